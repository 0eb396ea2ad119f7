/**
 * A problem the user can fix. The CLI prints `message` as one line and exits non-zero;
 * anything else that escapes is a bug and keeps its stack trace.
 */
export class TlError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'TlError';
  }
}

/** `file: what is wrong; what to do` — the shape every user-facing error takes. */
export function fileError(file: string, problem: string, fix: string): TlError {
  return new TlError(`${file}: ${problem}; ${fix}`);
}

/** The first line of what went wrong: for the parenthesised reason in a one-line error. */
export function errorLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
