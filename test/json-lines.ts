// A child process's standard output read as JSON lines while it runs (the worker processes of the PostgreSQL tests
// report what they do one JSON object per line).

/** Every line parsed so far; the array fills while the process runs. `onLine` hears each one as it comes. */
export function jsonLines(
  stdout: ReadableStream<Uint8Array>,
  onLine: (line: Record<string, any>) => void = () => {},
): Record<string, any>[] {
  const lines: Record<string, any>[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of stdout) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = JSON.parse(buffered.slice(0, nl));
        onLine(line);
        lines.push(line);
        buffered = buffered.slice(nl + 1);
      }
    }
  })();
  return lines;
}
