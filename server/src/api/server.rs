//! The Thrift server: an accept loop on its own thread and one worker thread per client
//! connection, at most `workers` of them.
//!
//! Why not `thrift::server::TServer`: its thread pool queues a connection beyond the pool's size
//! until a worker frees up, so that client hangs without a word, and it reads with the unbounded
//! binary protocol (see `super::protocol`). Here a connection beyond the limit is answered at
//! once with `DBException { errorCode: ERR_OVERLOADED }` (or an application error for calls that
//! declare no exception) and closed, so the client can go to another replica; and a malformed
//! or oversized message closes its own connection only.

use std::io::{BufReader, BufWriter};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use thrift::protocol::{
    TBinaryOutputProtocol, TFieldIdentifier, TInputProtocol, TMessageIdentifier, TMessageType, TOutputProtocol,
    TSerializable, TStructIdentifier, TType,
};
use thrift::server::TProcessor;
use thrift::{ApplicationError, ApplicationErrorKind};
use tracing::{debug, info, warn};

use super::convert::exception;
use super::generated as g;
use super::handler::Frontend;
use super::protocol::{BoundedBinaryInput, describe};

/// Connections waiting to be refused; more than this are closed without an answer.
const REFUSAL_QUEUE: usize = 64;
/// A refused client gets this long to send its first call.
const REFUSAL_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Settings of the Thrift server.
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    /// Worker threads: client connections served at once.
    pub workers: usize,
    /// Largest request.
    pub max_message_bytes: usize,
}

/// Serves `listener` on threads of its own (the thrift runtime is synchronous); returns at once.
pub fn spawn(listener: TcpListener, frontend: Frontend, cfg: ServerConfig) -> std::io::Result<()> {
    let (refuse_tx, refuse_rx) = sync_channel::<TcpStream>(REFUSAL_QUEUE);
    std::thread::Builder::new().name("thrift-refuse".into()).spawn(move || {
        for stream in refuse_rx {
            refuse(stream, cfg.workers);
        }
    })?;
    std::thread::Builder::new()
        .name("thrift-accept".into())
        .spawn(move || accept_loop(listener, frontend, cfg, refuse_tx))?;
    Ok(())
}

/// Counts a worker in, and out when dropped (also when the worker's thread panics).
struct WorkerSlot {
    active: Arc<AtomicUsize>,
    frontend: Frontend,
}

impl Drop for WorkerSlot {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::SeqCst);
        self.frontend.metrics().connections.dec();
    }
}

fn accept_loop(listener: TcpListener, frontend: Frontend, cfg: ServerConfig, refuse_tx: SyncSender<TcpStream>) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Most likely out of file descriptors: wait for some to be released.
                warn!("accepting a client connection: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= cfg.workers {
            active.fetch_sub(1, Ordering::SeqCst);
            frontend.metrics().connections_refused.inc();
            match refuse_tx.try_send(stream) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    debug!("refusal queue full: closing a client connection unanswered");
                }
            }
            continue;
        }
        frontend.metrics().connections.inc();
        let slot = WorkerSlot { active: active.clone(), frontend: frontend.clone() };
        let worker = std::thread::Builder::new().name("thrift-worker".into()).spawn(move || {
            let slot = slot;
            serve_connection(stream, slot.frontend.clone(), cfg.max_message_bytes);
        });
        if let Err(e) = worker {
            // The slot moved into the closure that never ran and was dropped with it.
            warn!("cannot start a worker thread: {e}");
        }
    }
    info!("Thrift listener closed");
}

/// Answers calls on one connection until the client closes it or sends something malformed.
fn serve_connection(stream: TcpStream, frontend: Frontend, max_message_bytes: usize) {
    let peer = stream.peer_addr().map_or_else(|_| "unknown".to_string(), |a| a.to_string());
    let _ = stream.set_nodelay(true);
    let read_half = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            warn!(%peer, "cannot use a client connection: {e}");
            return;
        }
    };
    let mut input = BoundedBinaryInput::new(BufReader::new(read_half), max_message_bytes);
    let mut output = TBinaryOutputProtocol::new(BufWriter::new(stream), true);
    let processor = g::BaristaSyncProcessor::new(frontend);
    loop {
        match processor.process(&mut input, &mut output) {
            Ok(()) => {}
            Err(thrift::Error::Transport(e)) if e.kind == thrift::TransportErrorKind::EndOfFile => break,
            Err(e) => {
                debug!(%peer, "closing the client connection: {}", describe(&e));
                break;
            }
        }
    }
}

/// Tells a client beyond the worker limit to go elsewhere, then closes its connection.
fn refuse(stream: TcpStream, workers: usize) {
    let _ = stream.set_read_timeout(Some(REFUSAL_READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(REFUSAL_READ_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else { return };
    let mut input = BoundedBinaryInput::new(BufReader::new(read_half), 64 * 1024);
    let Ok(call) = input.read_message_begin() else { return };
    let mut output = TBinaryOutputProtocol::new(BufWriter::new(stream), true);
    let why = format!("replica overloaded: all {workers} client workers are busy; try another replica or later");
    if let Err(e) = write_refusal(&mut output, &call, &why) {
        debug!("answering a refused client: {}", describe(&e));
    }
}

fn write_refusal(out: &mut dyn TOutputProtocol, call: &TMessageIdentifier, why: &str) -> thrift::Result<()> {
    if call.name == "get_version" || call.message_type != TMessageType::Call {
        // get_version declares no exception: an application error is all it can carry.
        let reply = TMessageIdentifier::new(call.name.clone(), TMessageType::Exception, call.sequence_number);
        out.write_message_begin(&reply)?;
        thrift::Error::write_application_error_to_out_protocol(
            &ApplicationError::new(ApplicationErrorKind::InternalError, why),
            out,
        )?;
    } else {
        // Every other call's result struct has its DBException as field 1, so one shape fits all.
        let reply = TMessageIdentifier::new(call.name.clone(), TMessageType::Reply, call.sequence_number);
        out.write_message_begin(&reply)?;
        out.write_struct_begin(&TStructIdentifier::new("result"))?;
        out.write_field_begin(&TFieldIdentifier::new("ex", TType::Struct, 1))?;
        exception(g::ERR_OVERLOADED, why, None).write_to_out_protocol(out)?;
        out.write_field_end()?;
        out.write_field_stop()?;
        out.write_struct_end()?;
    }
    out.write_message_end()?;
    out.flush()
}
