//! The server's Thrift request path on arbitrary bytes: the bounded binary reader
//! (`server/src/api/protocol.rs`), the generated processor, and the handler with its
//! conversions (`handler.rs`, `convert.rs`), exactly as a worker thread of `server.rs` runs them,
//! over an in-memory transport instead of a socket.
//!
//! The handler runs without a replica behind it: a [`Frontend`] whose service was never set,
//! which is what a `barista serve` that is still recovering answers with. Every call is decoded
//! in full and checked (request numbers, connection ids, statement and batch limits, parameter
//! conversion) before the handler finds no service and answers "not ready", so everything that
//! reads client bytes runs; what lies behind the service is covered by the other targets.
//!
//! Checked: no panic; the connection ends (the input is finite and every answered call consumed
//! bytes of it, so an endless loop is a hang found); and every answer written is a well-formed
//! message that the same bounded reader can read back whole.

use std::sync::{Arc, OnceLock};

use barista_server::admin::Metrics;
use barista_server::api::Frontend;
use barista_server::api::generated as g;
use barista_server::api::protocol::BoundedBinaryInput;
use barista_server::config::{Limits, defaults};
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol, TInputProtocol, TType};
use thrift::server::TProcessor;

/// The tokio runtime the front end would run requests on; never used without a service, but
/// the front end needs a handle. One per process: starting a runtime per input is slow.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime starts"))
}

/// The production limits (`barista serve`'s defaults).
fn limits() -> Limits {
    Limits {
        max_statement_bytes: defaults::MAX_STATEMENT_BYTES,
        max_batch_len: defaults::MAX_BATCH_LEN,
        max_message_bytes: defaults::MAX_MESSAGE_BYTES,
    }
}

/// The fuzz target: `data` is everything a client sends on one connection.
pub fn run(data: &[u8]) {
    let metrics = Arc::new(Metrics::new(0).expect("metrics register"));
    // A fresh front end per input: it remembers request numbers per connection.
    let frontend = Frontend::new(runtime().handle().clone(), limits(), metrics);
    let processor = g::BaristaSyncProcessor::new(frontend);
    let mut input = BoundedBinaryInput::new(data, limits().max_message_bytes);
    let mut output = TBinaryOutputProtocol::new(Vec::new(), true);
    let mut answered = 0usize;
    // The worker's loop in `server.rs`: serve calls until the input ends or is malformed. Each
    // answered call consumed at least a message header, so this ends within `data.len()` calls.
    while processor.process(&mut input, &mut output).is_ok() {
        answered += 1;
        assert!(answered <= data.len(), "the processor answers calls without consuming input");
    }
    let answers = output.transport;
    let mut reader = BoundedBinaryInput::new(answers.as_slice(), answers.len());
    for n in 0..answered {
        let header = reader.read_message_begin().unwrap_or_else(|e| panic!("answer {n} has a bad header: {e}"));
        reader.skip(TType::Struct).unwrap_or_else(|e| panic!("answer {n} ({}) is malformed: {e}", header.name));
    }
    assert!(reader.read_message_begin().is_err(), "more answers than answered calls");
}

/// Real calls, as the generated client writes them: every method, with connection ids in both
/// spellings, parameters, a batch, and a call after a connection was opened.
pub fn seeds() -> crate::Inputs {
    use g::TBaristaSyncClient;

    let con = |seq: Option<i64>| g::Connection {
        client_id: Some("00000000000000ff".into()),
        seq_id: None,
        user: Some("app".into()),
        database: None,
        connection_id: Some(255),
        request_seq: seq,
    };
    let old_style = g::Connection {
        client_id: Some("00000000000000ff".into()),
        seq_id: Some(" 12 ".into()),
        user: None,
        database: None,
        connection_id: None,
        request_seq: None,
    };
    type Call = Box<dyn Fn(&mut dyn TBaristaSyncClient)>;
    let calls: Vec<(&str, Call)> = vec![
        ("get_version", Box::new(|c| drop(c.get_version()))),
        (
            "open_connection",
            Box::new(|c| {
                let params = g::ConnectionParams::new(None, None, "app".to_string(), None, "db".to_string(), 7i64);
                drop(c.open_connection(params))
            }),
        ),
        (
            "execute_sql",
            Box::new(move |c| {
                drop(c.execute_sql(con(Some(1)), "INSERT INTO t VALUES ($1, $2)".into(), vec![b"1".to_vec(), vec![]]))
            }),
        ),
        (
            "execute_sql_txn_seq_id",
            Box::new(move |c| drop(c.execute_sql_txn(old_style.clone(), "SELECT now()".into(), vec![]))),
        ),
        ("begin_txn", Box::new(move |c| drop(c.begin_txn(con(Some(2)))))),
        ("commit_txn", Box::new(move |c| drop(c.commit_txn(con(Some(3)))))),
        ("rollback_txn", Box::new(move |c| drop(c.rollback_txn(con(None))))),
        ("close_connection", Box::new(move |c| drop(c.close_connection(con(Some(9)))))),
        (
            "execute_sql_batch",
            Box::new(move |c| {
                let value = g::Value::new(None, 5i64, None, None, None);
                let text = g::Value::new(None, None, None, "é".to_string(), None);
                let statements = vec![
                    g::Statement::new("INSERT INTO t VALUES ($1)".to_string(), vec![value]),
                    g::Statement::new("UPDATE t SET a = $1".to_string(), vec![text]),
                    g::Statement::new("SELECT 1".to_string(), None),
                ];
                drop(c.execute_sql_batch(con(Some(4)), statements, true))
            }),
        ),
    ];
    let mut out = Vec::new();
    let mut session = Vec::new();
    for (name, call) in calls {
        // The client writes the call, then fails to read an answer from the empty input.
        let written = Shared::default();
        let mut client = g::BaristaSyncClient::new(
            TBinaryInputProtocol::new(std::io::empty(), true),
            TBinaryOutputProtocol::new(written.clone(), true),
        );
        call(&mut client);
        let bytes = written.0.take();
        session.extend(bytes.iter().copied());
        out.push((name.to_string(), bytes));
    }
    out.push(("every_call_on_one_connection".into(), session));
    out
}

/// A buffer the client writes to and the seed builder reads from afterwards (the client owns
/// its protocols and only hands them out as trait objects).
#[derive(Clone, Default)]
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
