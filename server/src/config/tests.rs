//! The layers' precedence and the validation messages.

use clap::{CommandFactory, FromArgMatches};

use super::*;
use crate::cli::{Cli, Command};

/// The minimal valid file.
const FILE: &str = r#"
node_id = 1
peers = ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]
postgres = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
zookeeper = "127.0.0.1:2181"
"#;

/// Parses `barista serve ARGS...` over the file text `file` and validates.
fn load(file: &str, args: &[&str]) -> Result<ServeConfig, ConfigError> {
    let argv = ["barista", "serve"].iter().chain(args).copied();
    let matches = Cli::command().try_get_matches_from(argv).expect("arguments parse");
    let cli = Cli::from_arg_matches(&matches).expect("arguments convert");
    let serve_matches = matches.subcommand_matches("serve").expect("the serve subcommand");
    let Command::Serve(serve) = cli.command else { panic!("not serve") };
    validate::validate(merge(*serve, serve_matches, FileConfig::parse(file)?))
}

fn message(result: Result<ServeConfig, ConfigError>) -> String {
    match result {
        Ok(cfg) => panic!("accepted: {cfg:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_file_fills_in_and_defaults_apply() {
    let cfg = load(FILE, &[]).expect("valid");
    assert_eq!(cfg.node_id, 1);
    assert_eq!(cfg.peers.len(), 3);
    assert_eq!(cfg.peer_listen, cfg.peers[1], "peer_listen defaults to this node's peer address");
    assert_eq!(cfg.client_listen.to_string(), defaults::CLIENT_LISTEN);
    assert_eq!(cfg.protocol, Protocol::MultiPaxos);
    assert_eq!(cfg.tick, Duration::from_millis(10));
    assert_eq!((cfg.heartbeat_ticks, cfg.election_ticks), (5, 30));
    assert_eq!(cfg.limits.max_batch_len, defaults::MAX_BATCH_LEN);
    assert_eq!(cfg.runtime_threads, 1);
}

#[test]
fn flags_beat_the_file_and_the_file_beats_defaults() {
    let file = format!("{FILE}\nworkers = 7\nruntime_threads = 3\nprotocol = \"paxos\"\ntick_ms = 20\n");
    let cfg = load(&file, &["--workers", "9", "--election-timeout-ms", "1000"]).expect("valid");
    assert_eq!(cfg.workers, 9, "flag over file");
    assert_eq!(cfg.runtime_threads, 3, "file over default");
    assert_eq!(cfg.protocol, Protocol::Paxos, "file over default");
    assert_eq!(cfg.tick, Duration::from_millis(20), "file over default");
    assert_eq!(cfg.election_ticks, 50, "1000 ms in 20 ms ticks");
    let cfg = load(&file, &["--node-id", "2", "--peers", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"]).expect("valid");
    assert_eq!(cfg.node_id, 2);
    assert_eq!(cfg.peers[2].port(), 3);
}

#[test]
fn errors_name_the_key() {
    assert_eq!(
        message(load("", &[])),
        "`node_id` is required: set it in the configuration file, with --node-id, or in BARISTA_NODE_ID"
    );
    assert_eq!(
        message(load(FILE, &["--node-id", "3"])),
        "`node_id`: 3 is out of range: `peers` lists 3 addresses, so node ids are 0..=2"
    );
    assert!(message(load(&FILE.replace("7002", "7001"), &[])).contains("127.0.0.1:7001 is listed twice"));
    assert!(message(load(FILE, &["--heartbeat-ms", "500"])).starts_with("`heartbeat_ms`"));
    assert!(message(load(FILE, &["--window", "0"])).starts_with("`window`: must be greater than zero"));
    assert!(message(load(FILE, &["--client-listen", "127.0.0.1:9100"])).contains("is also `admin_listen`"));
    assert!(message(load(FILE, &["--zookeeper-root", "barista"])).starts_with("`zookeeper_root`"));
    assert!(message(load(FILE, &["--postgres", "port=notaport"])).starts_with("`postgres`"));
    assert!(message(load(FILE, &["--peers", "nonsense,127.0.0.1:1,127.0.0.1:2"])).starts_with("`peers`"));
}

#[test]
fn the_file_is_strict() {
    let err = message(load(&format!("{FILE}\nwindw = 3\n"), &[]));
    assert!(err.contains("unknown field `windw`"), "{err}");
    let err = message(load(&format!("{FILE}\nprotocol = \"raft\"\n"), &[]));
    assert!(err.contains("raft"), "{err}");
}

#[test]
fn the_example_file_is_valid() {
    let text = include_str!("../../barista.example.toml");
    let file = FileConfig::parse(text).expect("the example parses");
    assert!(file.node_id.is_some() && file.peers.is_some());
    load(text, &[]).expect("the example validates");
}

#[test]
fn the_postgresql_front_end_is_off_unless_listening_and_refuses_other_methods() {
    assert!(load(FILE, &[]).expect("valid").pg.is_none());
    let listen = ["--pg-listen", "127.0.0.1:5433"];
    let pg = load(FILE, &listen).expect("trust").pg.expect("on");
    assert_eq!((pg.auth, pg.user), (PgAuth::Trust, None));
    let scram = [&listen[..], &["--pg-auth", "scram-sha-256", "--pg-password", "pw", "--pg-user", "app"]].concat();
    let pg = load(FILE, &scram).expect("scram").pg.expect("on");
    assert_eq!(pg.auth, PgAuth::ScramSha256 { password: "pw".into() });
    assert_eq!(format!("{:?}", pg.auth), "ScramSha256", "the password is never printed");
    let file = format!("{FILE}\npg_listen = \"127.0.0.1:5433\"\npg_auth = \"md5\"\n");
    let err = message(load(&file, &[]));
    assert!(err.starts_with("`pg_auth`: `md5` is not supported: use `trust` or `scram-sha-256`"), "{err}");
    let err = message(load(FILE, &["--pg-auth", "trust"]));
    assert!(err.starts_with("`pg_auth`: is set, but the PostgreSQL protocol is off"), "{err}");
    let err = message(load(FILE, &[&listen[..], &["--pg-auth", "scram-sha-256"]].concat()));
    assert!(err.contains("scram-sha-256 needs a password"), "{err}");
    let err = message(load(FILE, &[&listen[..], &["--pg-password", "pw"]].concat()));
    assert!(err.starts_with("`pg_password`: is set, but `pg_auth` is trust"), "{err}");
    let err = message(load(FILE, &["--pg-listen", defaults::CLIENT_LISTEN]));
    assert!(err.contains("is also `pg_listen`"), "{err}");
}
