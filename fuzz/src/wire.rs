//! Every format Barista reads from outside the process: peer frames (an [`barista_core::Envelope`] per TCP
//! frame, `runtime/src/tcp.rs`), the acceptor records in ZooKeeper (a [`Paxo`] per slot node,
//! the onward [`Promise`], and the slot node names, `runtime/src/zookeeper.rs`), and client
//! commands in the log (`runtime/src/command.rs`).
//!
//! The first byte picks the format, the rest is the input. For each: decoding any bytes gives a
//! value or an error, never a panic, and a decoded value encodes to bytes that decode to a value
//! that encodes to the same bytes. (Bytes are compared rather than values: a command may hold a
//! NaN parameter, which is not equal to itself. The decoder accepts some non-canonical inputs,
//! so the input itself need not come back.)

use barista_core::{AcceptorState, Paxo, Promise, Protocol};
use barista_runtime::command::ClientCommand;
use barista_runtime::tcp::{decode_envelope, encode_envelope};
use barista_runtime::zookeeper::{decode_record, encode_record, parse_slot_name, slot_name};

/// The formats, by their first byte (modulo the count).
const FORMATS: u8 = 5;

/// The fuzz target.
pub fn run(data: &[u8]) {
    let Some((format, body)) = data.split_first() else { return };
    match format % FORMATS {
        0 => envelope(body),
        1 => record::<Paxo>(body),
        2 => record::<Promise>(body),
        3 => command(body),
        _ => name(body),
    }
}

fn envelope(body: &[u8]) {
    let Ok(decoded) = decode_envelope(body) else { return };
    let bytes = encode_envelope(&decoded);
    let again = decode_envelope(&bytes).unwrap_or_else(|e| panic!("{decoded:?} encodes to bytes it cannot read: {e}"));
    assert_eq!(again, decoded, "an envelope changed in an encode-decode round trip");
    assert_eq!(encode_envelope(&again), bytes);
}

fn record<T>(body: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(decoded) = decode_record::<T>(body) else { return };
    let bytes = encode_record(&decoded).unwrap_or_else(|e| panic!("{decoded:?} does not encode: {e}"));
    let again =
        decode_record::<T>(&bytes).unwrap_or_else(|e| panic!("{decoded:?} encodes to bytes it cannot read: {e}"));
    assert_eq!(again, decoded, "a record changed in an encode-decode round trip");
}

fn command(body: &[u8]) {
    let Ok(decoded) = ClientCommand::decode(body) else { return };
    let bytes = decoded.encode();
    let again =
        ClientCommand::decode(&bytes).unwrap_or_else(|e| panic!("{decoded:?} encodes to bytes it cannot read: {e}"));
    assert_eq!(again.encode(), bytes, "a command changed in an encode-decode round trip");
}

fn name(body: &[u8]) {
    let Ok(text) = std::str::from_utf8(body) else { return };
    if let Some(slot) = parse_slot_name(text) {
        assert_eq!(slot_name(slot), text, "slot node names are exactly the padded decimal slot");
    }
}

/// Real encodings of each format, each behind its format byte.
pub fn seeds() -> crate::Inputs {
    use barista_core::testkit::Cluster;
    use barista_runtime::command::{ConnId, Op, Statement};
    use barista_runtime::sql::SqlValue;

    let mut out = Vec::new();
    let mut add = |name: String, format: u8, bytes: Vec<u8>| {
        let mut input = vec![format];
        input.extend(bytes);
        out.push((name, input));
    };
    // Every kind of peer message, as a real three-replica run sends them, and the acceptor
    // records it persists.
    let mut kinds = std::collections::BTreeSet::new();
    let mut last_state = AcceptorState::default();
    for protocol in [Protocol::MultiPaxos, Protocol::Paxos] {
        let mut cluster = Cluster::new(3, protocol, 9);
        cluster.crash(2);
        for round in 0..40 {
            if round % 3 == 0 {
                let _ = cluster.propose(0, format!("command {round}"));
            }
            if round == 25 {
                cluster.restart(2);
            }
            // Slot records before the replicas forget them (everything applied everywhere is).
            if last_state.slots.len() < 3 {
                last_state = cluster.disks[0].acceptor.clone();
            }
            cluster.tick_all();
            while !cluster.network.is_empty() {
                let envelope = cluster.network[0].clone();
                if kinds.insert(envelope.message.kind()) {
                    add(format!("envelope_{}", envelope.message.kind()), 0, encode_envelope(&envelope).to_vec());
                }
                cluster.deliver(0);
            }
        }
    }
    for (slot, paxo) in last_state.slots.iter().take(3) {
        add(format!("paxo_slot_{slot}"), 1, encode_record(paxo).unwrap_or_default());
    }
    add("promise".into(), 2, encode_record(&last_state.promise).unwrap_or_default());
    let command = |op| ClientCommand { conn: ConnId(0xfeed), request_seq: 3, timestamp_us: 1_700_000_000_000_000, op };
    let statement = |sql: &str| Statement {
        sql: sql.into(),
        params: vec![SqlValue::Int(1), SqlValue::Null, SqlValue::Text("é".into()), SqlValue::Float(0.5)],
    };
    add("command_open".into(), 3, command(Op::Open).encode());
    add("command_execute".into(), 3, command(Op::Execute(statement("INSERT INTO t VALUES ($1, $2)"))).encode());
    let batch = Op::ExecuteBatch { statements: vec![statement("SELECT 1"), statement("SELECT $1")], atomic: true };
    add("command_batch".into(), 3, command(batch).encode());
    add("command_abort_idle".into(), 3, command(Op::AbortIdle { since_request: 2 }).encode());
    add("slot_name".into(), 4, slot_name(42).into_bytes());
    out
}
