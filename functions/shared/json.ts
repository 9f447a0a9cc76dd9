/** JSON that AWS hands back as text (an execution's input, output or cause; a child's result): its value, or undefined when it is absent or not JSON. */
export function parseJson(text: string | undefined): unknown {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A Lambda error's cause is JSON holding errorType and errorMessage: its message. Any other cause is the message itself. */
export function causeMessage(cause: string): string {
  const parsed = parseJson(cause);
  const message = typeof parsed === 'object' && parsed !== null ? (parsed as { errorMessage?: unknown }).errorMessage : undefined;
  return typeof message === 'string' ? message : cause;
}
