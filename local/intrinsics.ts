/**
 * aws-local-stepfunctions 3.0.0 strips every backslash from the string an intrinsic function returns
 * (BaseIntrinsicFunction.call: `result.replaceAll("\\", "")`, meant for escaped quotes in string literals). On AWS,
 * States.JsonToString returns the argument as a JSON text ("Intrinsic functions for JSONPath" in the Step Functions
 * Developer Guide): a value holding a quote or a backslash stays valid JSON, and States.StringToJson or a reader of a
 * failure's cause parses it back. Here a JSON text keeps its backslashes; every other string is stripped as before.
 * Loaded only by the local runner, never by the functions.
 */
let installed = false;

export function installIntrinsicFix(): void {
  if (installed) return;
  installed = true;
  const original = String.prototype.replaceAll;
  String.prototype.replaceAll = function (this: string, search: string | RegExp, replacement: never) {
    if (search === '\\' && (replacement as unknown) === '' && isJsonText(String(this))) return String(this);
    return original.call(this, search, replacement) as string;
  } as typeof String.prototype.replaceAll;
}

function isJsonText(text: string): boolean {
  if (!text.includes('\\') || !/^[[{"]/.test(text)) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
