// JSON from etcd that may hold keys' values: V8's parse error quotes a piece of the text, and a
// value must never reach a log or an error.
import { StepError } from '../../errors.ts';

/** JSON.parse, whose error says what was read and how long it was, never what it held. */
export function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new StepError(`${what} is not valid JSON (${text.length} characters; not shown, it may hold a value)`);
  }
}
