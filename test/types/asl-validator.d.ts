declare module 'asl-validator' {
  interface ValidationResult {
    isValid: boolean;
    errors: unknown[];
  }
  function aslValidator(definition: unknown, options?: { checkArn?: boolean; checkPaths?: boolean }): ValidationResult;
  export default aslValidator;
}
