// [storage] url for PostgreSQL (hosted mode, issue 17): what a usable URL looks like, checked before anything
// connects (pure), and the URL as messages may show it (never its password).

/** How to write the URL, for messages: the password from the environment, not in kontobro.toml. */
export const POSTGRES_URL_EXAMPLE = "postgres://kontobro:${KONTOBRO_PG_PASSWORD}@db.example.com:5432/kontobro";

/** What is wrong with a [storage] url, or null when kontobro can try it. The URL itself is never repeated. */
export function postgresUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return (
      `is not a URL; write it as ${POSTGRES_URL_EXAMPLE} ` + "(characters such as @ / : # ? in the password are percent-encoded: @ is %40)"
    );
  }
  const scheme = u.protocol.replace(/:$/, "");
  if (scheme !== "postgres" && scheme !== "postgresql") {
    return `uses ${scheme}:, which kontobro does not store in: use a postgres:// URL such as ${POSTGRES_URL_EXAMPLE}, or leave url out to keep the SQLite file in agent.data_dir`;
  }
  if (!u.hostname) return `names no server: write it as ${POSTGRES_URL_EXAMPLE}`;
  if (!u.username) return `names no role to connect as (the part before @): write it as ${POSTGRES_URL_EXAMPLE}`;
  const database = u.pathname.replace(/^\//, "");
  if (!database || database.includes("/")) return `names no database (the part after the last /): write it as ${POSTGRES_URL_EXAMPLE}`;
  return null;
}

/** The URL with its password masked, for logs and messages: postgres://kontobro:***@db:5432/kontobro. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(not a URL)";
  }
}

/** The password in the URL (percent-decoded), to be masked in logs; undefined when there is none. */
export function passwordOf(url: string): string | undefined {
  try {
    const password = new URL(url).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}

/** Server, port, database and role of a usable URL, for what `kontobro storage check` reports. */
export function partsOf(url: string): { host: string; port: number; database: string; role: string } {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 5432,
    database: decodeURIComponent(u.pathname.replace(/^\//, "")),
    role: decodeURIComponent(u.username),
  };
}
