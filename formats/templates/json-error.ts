// Where a JSON text goes wrong, for people who edit a template file by hand: JSON.parse (Bun's) says what it met but
// not where. A small strict JSON reader that stops at the first error and says its line, column and what was expected.
// Pure.

export interface JsonError {
  line: number;
  column: number;
  message: string;
}

class Stop {
  constructor(
    readonly at: number,
    readonly message: string,
  ) {}
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING_ESCAPE = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y;

/** The first syntax error of `text` as JSON, or null when it is valid JSON. */
export function findJsonError(text: string): JsonError | null {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\r\n".includes(text[i]!)) i++;
  };
  const fail = (message: string): never => {
    throw new Stop(i, message);
  };
  const met = () => (i >= text.length ? "the end of the file" : `${JSON.stringify(text[i])}`);

  const string = () => {
    i++; // the opening quote
    for (;;) {
      if (i >= text.length) fail("a text in double quotes is not closed");
      const c = text[i]!;
      if (c === '"') return void i++;
      if (c === "\n" || c === "\r") fail('a line break inside a text in double quotes (write it as \\n, or close the text with ")');
      if (c === "\\") {
        STRING_ESCAPE.lastIndex = i;
        if (!STRING_ESCAPE.test(text)) fail('a backslash in a text must be written \\\\ (or start \\" \\n \\t \\uXXXX)');
        i = STRING_ESCAPE.lastIndex;
      } else i++;
    }
  };

  const literal = (): boolean => {
    const word = ["true", "false", "null"].find((w) => text.startsWith(w, i));
    if (word) i += word.length;
    else {
      NUMBER.lastIndex = i;
      if (!NUMBER.test(text)) return false;
      i = NUMBER.lastIndex;
    }
    return true;
  };

  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") object();
    else if (c === "[") array();
    else if (c === '"') string();
    else if (!literal()) fail(`expected a value (a text in double quotes, a number, true, false, null, { or [), found ${met()}`);
  };

  const object = () => {
    i++;
    ws();
    if (text[i] === "}") return void i++;
    for (;;) {
      ws();
      if (text[i] !== '"')
        fail(`expected a name in double quotes, found ${met()}${text[i] === "}" ? " (a comma before } is not allowed)" : ""}`);
      string();
      ws();
      if (text[i] !== ":") fail(`expected : after the name, found ${met()}`);
      i++;
      value();
      ws();
      if (text[i] === "}") return void i++;
      if (text[i] !== ",") fail(`expected , or } after the value, found ${met()}`);
      i++;
    }
  };

  const array = () => {
    i++;
    ws();
    if (text[i] === "]") return void i++;
    for (;;) {
      value();
      ws();
      if (text[i] === "]") return void i++;
      if (text[i] !== ",") fail(`expected , or ] after the value, found ${met()}`);
      i++;
      ws();
      if (text[i] === "]") fail("a comma before ] is not allowed");
    }
  };

  try {
    value();
    ws();
    if (i < text.length) fail(`unexpected ${met()} after the end of the JSON value`);
    return null;
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    const before = text.slice(0, e.at).split("\n");
    return { line: before.length, column: before[before.length - 1]!.length + 1, message: e.message };
  }
}
