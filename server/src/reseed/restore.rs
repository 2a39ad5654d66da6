//! The target side: checks that nothing runs on the target database, empties it on `--force`,
//! creates the snapshot's roles, and copies the snapshot with `pg_dump --snapshot | psql
//! --single-transaction`, finishing that one transaction with the sequences set and AP checked.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use barista_core::Slot;
use barista_runtime::postgres::{quote_ident, string_literal};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use tokio_postgres::Client;

use super::snapshot::{Membership, Role, Snapshot};
use super::{APPLICATION_NAME, REPLICA_APPLICATION_NAME, connect};

/// Lines of a failing program's error output shown.
const ERROR_LINES: usize = 20;

/// The target database.
pub(super) struct Target {
    pub client: Client,
}

/// What a database holds besides the system schemas.
pub(super) struct Contents {
    relations: i64,
    functions: i64,
    schemas: Option<String>,
    applied: Option<i64>,
}

impl Contents {
    pub fn is_empty(&self) -> bool {
        self.relations == 0 && self.functions == 0 && self.schemas.is_none()
    }
}

impl fmt::Display for Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} relations, {} functions", self.relations, self.functions)?;
        if let Some(schemas) = &self.schemas {
            write!(f, ", schemas {schemas}")?;
        }
        if let Some(ap) = self.applied {
            write!(f, ", Barista's tables at AP {ap}")?;
        }
        Ok(())
    }
}

impl Target {
    pub async fn open(config: &tokio_postgres::Config) -> anyhow::Result<Target> {
        let client = connect(config, "the replica's own database (its `postgres` setting)").await?;
        Ok(Target { client })
    }

    /// Fails if a Barista process is connected to the database (one whose admin address is not
    /// the configured one, or that is still shutting down).
    pub async fn check_idle(&self) -> anyhow::Result<()> {
        let rows = self
            .client
            .query(
                "SELECT pid, coalesce(client_addr::text, 'local') FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()",
                &[&REPLICA_APPLICATION_NAME],
            )
            .await
            .context("reading pg_stat_activity on the target")?;
        if let Some(row) = rows.first() {
            let (pid, from): (i32, String) = (row.get(0), row.get(1));
            bail!(
                "{} Barista connection(s) are open on the target database (backend pid {pid}, from {from}): a \
                 `barista serve` still runs against it; stop it first",
                rows.len()
            );
        }
        Ok(())
    }

    pub async fn contents(&self) -> anyhow::Result<Contents> {
        let row = self
            .client
            .query_one(
                "SELECT \
                   (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                    WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'), \
                   (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                    WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'), \
                   (SELECT string_agg(quote_ident(nspname), ', ' ORDER BY nspname) FROM pg_namespace \
                    WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\\_%'), \
                   to_regclass('public.sqlpaxoslog') IS NOT NULL",
                &[],
            )
            .await
            .context("reading the target's catalog")?;
        let applied = if row.get(3) { Some(self.applied().await? as i64) } else { None };
        Ok(Contents { relations: row.get(0), functions: row.get(1), schemas: row.get(2), applied })
    }

    /// Drops every schema but the system ones, and makes `public` anew as `initdb` makes it.
    pub async fn clear(&self) -> anyhow::Result<()> {
        let schemas = self
            .client
            .query(
                "SELECT nspname::text FROM pg_namespace WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'",
                &[],
            )
            .await?;
        let version: i32 =
            self.client.query_one("SELECT current_setting('server_version_num')::int", &[]).await?.get(0);
        let mut sql = String::from("BEGIN;\n");
        for row in schemas {
            sql.push_str(&format!("DROP SCHEMA {} CASCADE;\n", quote_ident(row.get(0))));
        }
        // PostgreSQL 15 changed the default `public` schema.
        sql.push_str(if version >= 150_000 {
            "CREATE SCHEMA public AUTHORIZATION pg_database_owner;\nGRANT USAGE ON SCHEMA public TO PUBLIC;\n"
        } else {
            "CREATE SCHEMA public;\nGRANT ALL ON SCHEMA public TO PUBLIC;\n"
        });
        sql.push_str("COMMENT ON SCHEMA public IS 'standard public schema';\nCOMMIT;");
        self.client.batch_execute(&sql).await.context("emptying the target database")
    }

    /// Creates the roles the target's cluster lacks, and grants the memberships it lacks.
    pub async fn create_roles(&self, roles: &[Role], memberships: &[Membership]) -> anyhow::Result<()> {
        if roles.is_empty() && memberships.is_empty() {
            return Ok(());
        }
        let exists = |sql: &'static str| async move {
            let rows = self.client.query(sql, &[]).await?;
            Ok::<_, anyhow::Error>(rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<String>>())
        };
        let have = exists("SELECT rolname::text FROM pg_roles").await?;
        let granted = exists(
            "SELECT r.rolname || ' ' || m.rolname FROM pg_auth_members am \
             JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member",
        )
        .await?;
        let mut sql = String::new();
        let mut created = 0;
        for role in roles.iter().filter(|r| !have.contains(&r.name)) {
            created += 1;
            sql.push_str(&format!("CREATE ROLE {} WITH {}", quote_ident(&role.name), role.options));
            if let Some(password) = &role.password {
                sql.push_str(&format!(" PASSWORD {}", string_literal(password)));
            }
            sql.push_str(";\n");
        }
        for m in memberships.iter().filter(|m| !granted.contains(&format!("{} {}", m.role, m.member))) {
            let admin = if m.admin { " WITH ADMIN OPTION" } else { "" };
            sql.push_str(&format!("GRANT {} TO {}{admin};\n", quote_ident(&m.role), quote_ident(&m.member)));
        }
        self.client.batch_execute(&sql).await.context("creating the source's roles on the target")?;
        println!(
            "  roles: created {created} of the snapshot's {} on the target's PostgreSQL (the others existed)",
            roles.len()
        );
        Ok(())
    }

    /// AP in the target database.
    pub async fn applied(&self) -> anyhow::Result<Slot> {
        let row = self
            .client
            .query_one("SELECT lastseqnum FROM public.sqlpaxoslog WHERE id = 1", &[])
            .await
            .context("reading AP on the target")?;
        Ok(row.get::<_, i64>(0) as Slot)
    }
}

/// Copies `snap` from `source` into `target` in one transaction; returns the bytes of SQL copied.
pub(super) fn copy(bindir: &Path, source: &str, target: &str, snap: &Snapshot) -> anyhow::Result<u64> {
    let started = Instant::now();
    let mut dump = Command::new(bindir.join("pg_dump"))
        .args(["--format=plain", "--verbose", "--no-password", "--snapshot", &snap.id, "--dbname", source])
        .env("PGAPPNAME", APPLICATION_NAME)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bindir.join("pg_dump").display()))?;
    let mut psql = match Command::new(bindir.join("psql"))
        .args(["-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", "-"])
        .args(["--dbname", target])
        .env("PGAPPNAME", APPLICATION_NAME)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(psql) => psql,
        Err(e) => {
            let _ = dump.kill();
            let _ = dump.wait();
            return Err(e).with_context(|| format!("starting {}", bindir.join("psql").display()));
        }
    };

    let bar = ProgressBar::new(snap.tables.max(1));
    if let Ok(style) = ProgressStyle::with_template("  copying {bar:30} {pos}/{len} tables, {msg} ({elapsed})") {
        bar.set_style(style);
    }
    // pg_dump --verbose names each table as it dumps its rows.
    let dump_err = dump.stderr.take().map(|err| {
        let bar = bar.clone();
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("dumping contents of table") {
                    bar.inc(1);
                } else if !line.starts_with("pg_dump: ") || line.contains("error") || line.contains("warning") {
                    kept.push(line);
                }
            }
            kept
        })
    });
    let psql_err = psql.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        })
    });

    let mut bytes = 0u64;
    let mut copied = Ok(());
    if let (Some(mut from), Some(mut to)) = (dump.stdout.take(), psql.stdin.take()) {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Err(e) = to.write_all(&buf[..n]) {
                        copied = Err(anyhow::Error::from(e).context("writing to psql"));
                        let _ = dump.kill(); // nobody reads its output any more
                        break;
                    }
                    bytes += n as u64;
                    bar.set_message(HumanBytes(bytes).to_string());
                }
                Err(e) => {
                    copied = Err(anyhow::Error::from(e).context("reading from pg_dump"));
                    break;
                }
            }
        }
        let dumped = dump.wait().context("waiting for pg_dump")?;
        let dump_errors = dump_err.and_then(|t| t.join().ok()).unwrap_or_default();
        if copied.is_ok() && !dumped.success() {
            copied = Err(anyhow::anyhow!("pg_dump failed ({dumped}):\n{}", last_lines(&dump_errors.join("\n"))));
        }
        if copied.is_ok() {
            // The end of the same transaction: sequences as of the snapshot, then AP checked.
            copied = to.write_all(finish_sql(snap).as_bytes()).context("writing to psql");
        }
        if copied.is_err() {
            // Never let psql reach the end of its input: it would commit a partial copy.
            let _ = psql.kill();
        }
    } else {
        let _ = dump.kill();
        let _ = psql.kill();
        copied = Err(anyhow::anyhow!("pg_dump's output or psql's input is not a pipe"));
    }
    let restored = psql.wait().context("waiting for psql")?;
    bar.finish_and_clear();
    let psql_errors = psql_err.and_then(|t| t.join().ok()).unwrap_or_default();
    copied?;
    if !restored.success() {
        bail!(
            "restoring with psql failed ({restored}); the target database is left as it was:\n{}",
            last_lines(&psql_errors)
        );
    }
    println!(
        "  copied {} tables, {} of SQL, in {:.1} s, in one transaction; {} sequences set as of the snapshot",
        snap.tables,
        HumanBytes(bytes),
        started.elapsed().as_secs_f64(),
        snap.sequences.len()
    );
    Ok(bytes)
}

/// The SQL that ends the restore: each sequence as of the snapshot (`pg_dump` read them later),
/// then a check that the copy is at the snapshot's AP.
fn finish_sql(snap: &Snapshot) -> String {
    let mut sql = String::from("\n-- barista reseed: sequences as of the snapshot\n");
    for s in &snap.sequences {
        sql.push_str(&format!(
            "SELECT pg_catalog.setval({}, {}, {});\n",
            string_literal(&s.name),
            s.last_value,
            s.is_called
        ));
    }
    sql.push_str(&format!(
        "DO $reseed$ BEGIN\n  IF (SELECT lastseqnum FROM public.sqlpaxoslog WHERE id = 1) IS DISTINCT FROM {ap} THEN\n    \
         RAISE EXCEPTION 'barista reseed: the copy is not at AP {ap}';\n  END IF;\nEND $reseed$;\n",
        ap = snap.applied
    ));
    sql
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(ERROR_LINES)..].join("\n")
}
