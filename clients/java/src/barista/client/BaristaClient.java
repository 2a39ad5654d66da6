package barista.client;

import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

import org.apache.thrift.TException;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.transport.TSocket;

/**
 * A connection to a Barista cluster: one replicated session, served by any replica.
 *
 * <p>It takes the list of replica addresses ({@code host:port}), talks to one replica at a time, and when
 * that replica is down or answers that it cannot serve now ({@link #ERR_NOT_READY}, {@link #ERR_OVERLOADED})
 * it moves to the next one and retries the request in flight with the <em>same</em> request sequence number.
 * The replicas run each (connection, request_seq) at most once and answer a repeat with the first run's
 * outcome, so failing over never runs a statement twice.
 *
 * <pre>
 * try (BaristaClient db = BaristaClient.connect(List.of("10.0.0.1:9090", "10.0.0.2:9090"))) {
 *     db.execute("INSERT INTO t VALUES ($1, $2)", 1, null);
 *     Rows rows = db.execute("SELECT k, v FROM t");
 * }
 * </pre>
 *
 * <p>Not thread-safe: one session runs one request at a time.
 */
public final class BaristaClient implements AutoCloseable {
    /** A statement failed in PostgreSQL, the same way on every replica; see {@link BaristaException#getSqlState()}. */
    public static final int ERR_SQL = barista.baristaConstants.ERR_SQL;
    /** The replica cannot serve now; the client retries elsewhere, you see it only if no replica could. */
    public static final int ERR_NOT_READY = barista.baristaConstants.ERR_NOT_READY;
    /** The replica is overloaded; the client retries elsewhere. */
    public static final int ERR_OVERLOADED = barista.baristaConstants.ERR_OVERLOADED;
    /** Barista will not replicate this statement (it could make replicas differ); nothing ran. */
    public static final int ERR_REFUSED = barista.baristaConstants.ERR_REFUSED;
    /** The call does not fit the connection's state (closed, COMMIT without BEGIN, ...). */
    public static final int ERR_REJECTED = barista.baristaConstants.ERR_REJECTED;
    /** The call is malformed or over a server limit. */
    public static final int ERR_BAD_REQUEST = barista.baristaConstants.ERR_BAD_REQUEST;

    /** How hard the client tries. */
    public static final class Options {
        int connectTimeoutMillis = 2000;
        int ioTimeoutMillis = 30000;
        int rounds = 5;
        int backoffMillis = 100;

        /** Longest wait to connect to one replica (default 2 s). */
        public Options connectTimeoutMillis(int ms) {
            connectTimeoutMillis = ms;
            return this;
        }

        /**
         * Longest wait for one answer (default 30 s); keep it above the servers' request_timeout_ms, or a slow
         * answer is taken for a dead replica (safe, but wasteful).
         */
        public Options ioTimeoutMillis(int ms) {
            ioTimeoutMillis = ms;
            return this;
        }

        /** Passes over the whole replica list before a request gives up (default 5). */
        public Options rounds(int n) {
            rounds = n;
            return this;
        }

        /** Pause after a pass in which no replica answered; doubles each pass, up to 2 s (default 100 ms). */
        public Options backoffMillis(int ms) {
            backoffMillis = ms;
            return this;
        }
    }

    @FunctionalInterface
    private interface Call<T> {
        T run(barista.Barista.Client rpc, barista.Connection con) throws TException;
    }

    /** One TCP connection to one replica, as the server speaks: binary protocol on a buffered socket. */
    private static final class Link {
        final TSocket socket;
        final barista.Barista.Client rpc;

        Link(String addr, Options o) throws TException {
            int colon = addr.lastIndexOf(':');
            if (colon < 0) {
                throw new IllegalArgumentException("replica address without a port: " + addr);
            }
            socket = new TSocket(addr.substring(0, colon), Integer.parseInt(addr.substring(colon + 1)));
            socket.setConnectTimeout(o.connectTimeoutMillis);
            socket.setSocketTimeout(o.ioTimeoutMillis);
            socket.open();
            rpc = new barista.Barista.Client(new TBinaryProtocol(socket));
        }

        void close() {
            socket.close();
        }
    }

    private static final SecureRandom RANDOM = new SecureRandom();

    private final List<String> replicas;
    private final Options options;
    private int current;
    private Link link;
    private barista.Connection con;
    private long nextSeq = 1;
    private boolean closed;

    private BaristaClient(List<String> replicas, Options options) {
        this.replicas = Collections.unmodifiableList(new ArrayList<>(replicas));
        this.options = options;
    }

    /** Opens a session on the first replica of {@code replicas} that answers. */
    public static BaristaClient connect(List<String> replicas) throws BaristaException {
        return connect(replicas, new Options());
    }

    /** Opens a session on the first replica of {@code replicas} that answers. */
    public static BaristaClient connect(List<String> replicas, Options options) throws BaristaException {
        if (replicas.isEmpty()) {
            throw new UnavailableException("no replica addresses given");
        }
        BaristaClient client = new BaristaClient(replicas, options);
        // Chosen here, not by the replica, so that an open_connection retried at another replica opens this
        // same session once (open_connection is request 0 of the session).
        long id = 0;
        while (id == 0) {
            id = RANDOM.nextLong() & Long.MAX_VALUE;
        }
        barista.ConnectionParams params = new barista.ConnectionParams().setConnection_id(id);
        barista.Connection opened = client.withFailover((rpc, unused) -> rpc.open_connection(params), null);
        opened.setConnection_id(id);
        opened.unsetRequest_seq();
        client.con = opened;
        return client;
    }

    /** The replica in use ({@code host:port}). */
    public String replica() {
        return replicas.get(current);
    }

    /** The replicated session's id. */
    public long connectionId() {
        return con.getConnection_id();
    }

    /**
     * Runs one statement (autocommit, or in the open transaction) with parameters {@code $1, $2, ...}: null
     * (SQL NULL), Boolean, Byte/Short/Integer/Long, Float/Double, String, byte[] (bytea), or anything else in
     * its text form ({@code toString()}, e.g. a BigDecimal for numeric).
     */
    public Rows execute(String sql, Object... params) throws BaristaException {
        List<Result> results = batch(Collections.singletonList(new Statement(sql, params)), false);
        if (results.isEmpty()) {
            throw new BaristaException(ERR_REJECTED, null, "the replica returned no result");
        }
        return results.get(0).rows();
    }

    /**
     * Runs statements as one request (one replicated log entry). {@code atomic}: in one transaction, all or
     * nothing, and the failing statement's error is thrown. Otherwise each statement on its own, one result
     * each (see {@link Result#isOk()}).
     */
    public List<Result> batch(List<Statement> statements, boolean atomic) throws BaristaException {
        List<barista.Statement> wire = new ArrayList<>(statements.size());
        for (Statement s : statements) {
            List<barista.Value> params = new ArrayList<>(s.params().size());
            for (Object p : s.params()) {
                params.add(toValue(p));
            }
            wire.add(new barista.Statement(s.sql()).setParams(params));
        }
        List<barista.ResultSet> sets = request((rpc, c) -> rpc.execute_sql_batch(c, wire, atomic));
        List<Result> results = new ArrayList<>(sets.size());
        for (barista.ResultSet rs : sets) {
            if (!rs.isStatus() && rs.isSetError()) {
                results.add(new Result(null, fromException(rs.getError())));
            } else {
                results.add(new Result(new Rows(rs), null));
            }
        }
        return results;
    }

    /** Runs statements as one non-atomic request (see {@link #batch(List, boolean)}). */
    public List<Result> batch(Statement... statements) throws BaristaException {
        return batch(Arrays.asList(statements), false);
    }

    public void begin() throws BaristaException {
        request((rpc, c) -> {
            rpc.begin_txn(c);
            return null;
        });
    }

    public void commit() throws BaristaException {
        request((rpc, c) -> {
            rpc.commit_txn(c);
            return null;
        });
    }

    public void rollback() throws BaristaException {
        request((rpc, c) -> {
            rpc.rollback_txn(c);
            return null;
        });
    }

    /** Begins a transaction that {@link Transaction#close()} rolls back unless it was committed. */
    public Transaction transaction() throws BaristaException {
        begin();
        return new Transaction(this);
    }

    /** Ends the session on every replica (an open transaction rolls back). Closing twice does nothing. */
    @Override
    public void close() throws BaristaException {
        if (closed) {
            return;
        }
        try {
            request((rpc, c) -> {
                rpc.close_connection(c);
                return null;
            });
        } finally {
            closed = true;
            if (link != null) {
                link.close();
                link = null;
            }
        }
    }

    private static barista.Value toValue(Object p) {
        barista.Value v = new barista.Value();
        if (p == null) {
            return v; // no field set: SQL NULL
        } else if (p instanceof Boolean) {
            v.setBool_value((Boolean) p);
        } else if (p instanceof Byte || p instanceof Short || p instanceof Integer || p instanceof Long) {
            v.setInt_value(((Number) p).longValue());
        } else if (p instanceof Float || p instanceof Double) {
            v.setDouble_value(((Number) p).doubleValue());
        } else if (p instanceof byte[]) {
            v.setBinary_value((byte[]) p);
        } else {
            v.setText_value(p.toString());
        }
        return v;
    }

    /** The error for a DBException that is the answer (not a reason to try another replica). */
    private static BaristaException fromException(barista.DBException ex) {
        return new BaristaException(ex.getErrorCode(), ex.getSqlstate(), ex.getMessage());
    }

    /** True if the exception means "this replica cannot serve now; another may". */
    private static boolean tryElsewhere(barista.DBException ex) {
        return ex.getErrorCode() == ERR_NOT_READY || ex.getErrorCode() == ERR_OVERLOADED;
    }

    /** One request under the next sequence number, retried with that number until answered. */
    private <T> T request(Call<T> call) throws BaristaException {
        if (closed) {
            throw new BaristaException(0, null, "the connection is closed");
        }
        barista.Connection c = con.deepCopy().setRequest_seq(nextSeq);
        // Used up whatever happens: a replica may have run it even if no answer came back, so a new request
        // must never reuse the number.
        nextSeq++;
        return withFailover(call, c);
    }

    /** Tries {@code call} on the replica in use, then on the next ones, for {@code rounds} passes. */
    private <T> T withFailover(Call<T> call, barista.Connection c) throws BaristaException {
        int n = replicas.size();
        String[] reasons = new String[n];
        Arrays.fill(reasons, "not tried");
        long backoff = options.backoffMillis;
        int attempts = Math.max(options.rounds, 1) * n;
        for (int attempt = 0; attempt < attempts; attempt++) {
            if (attempt > 0 && attempt % n == 0) {
                try {
                    Thread.sleep(backoff);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new UnavailableException("interrupted while waiting for a replica");
                }
                backoff = Math.min(backoff * 2, 2000);
            }
            int i = current;
            try {
                if (link == null) {
                    link = new Link(replicas.get(i), options);
                }
                return call.run(link.rpc, c);
            } catch (barista.DBException ex) {
                // An answer: the connection is fine, keep it either way.
                if (!tryElsewhere(ex)) {
                    throw fromException(ex);
                }
                reasons[i] = ex.getMessage();
            } catch (TException ex) {
                // Transport, protocol or application error: this connection's state is unknown. Drop it and go
                // on to the next replica with the same request.
                if (link != null) {
                    link.close();
                    link = null;
                }
                reasons[i] = String.valueOf(ex.getMessage());
            }
            current = (i + 1) % n;
        }
        StringBuilder message = new StringBuilder("no replica answered:");
        for (int i = 0; i < n; i++) {
            message.append(i == 0 ? " " : "; ").append(replicas.get(i)).append(": ").append(reasons[i]);
        }
        throw new UnavailableException(message.toString());
    }
}
