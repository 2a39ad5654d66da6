// Package baristadb is a client for a Barista cluster: one replicated session, any replica, with
// failover.
//
//	db, err := baristadb.Connect(ctx, []string{"127.0.0.1:9090", "127.0.0.1:9091"}, baristadb.Config{})
//	if err != nil { ... }
//	defer db.Close()
//	rows, err := db.Exec(ctx, "SELECT k, v FROM t WHERE k = $1", 1)
//
// Every call gets the session's next request number before its first attempt and keeps it
// through every retry: the replicas run a request once per (connection, request number) and
// answer a repeat with the first run's outcome. So when the replica in use dies mid-call (the
// answer is lost) or says it cannot serve now (CodeNotReady, CodeOverloaded), the same call goes
// to the next replica in the list without any risk of running twice. The session is opened under
// a random connection id chosen here, so that open_connection can be retried elsewhere too.
//
// A Client is not safe for concurrent use: it is one session, whose calls are sequential.
package baristadb

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"barista/clients/go/gen/barista"
)

// Config says how hard a Client tries. Zero fields take the defaults.
type Config struct {
	// ConnectTimeout is the longest wait to connect to one replica (default 2 s).
	ConnectTimeout time.Duration
	// IOTimeout is the longest wait for one answer (default 30 s). It must exceed the servers'
	// request_timeout_ms, or a slow answer is taken for a dead replica (safe, but wasteful).
	IOTimeout time.Duration
	// Rounds is the number of passes over the whole replica list before giving up (default 5).
	Rounds int
	// Backoff is the pause after a pass in which no replica answered; it doubles each pass, up to
	// 2 s (default 100 ms).
	Backoff time.Duration
}

func (c Config) withDefaults() Config {
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 2 * time.Second
	}
	if c.IOTimeout <= 0 {
		c.IOTimeout = 30 * time.Second
	}
	if c.Rounds <= 0 {
		c.Rounds = 5
	}
	if c.Backoff <= 0 {
		c.Backoff = 100 * time.Millisecond
	}
	return c
}

// link is the generated client over one buffered TCP connection (the server's transport).
type link struct {
	transport thrift.TTransport
	client    *barista.BaristaClient
}

func dial(addr string, cfg Config) (*link, error) {
	conf := &thrift.TConfiguration{ConnectTimeout: cfg.ConnectTimeout, SocketTimeout: cfg.IOTimeout}
	transport := thrift.NewTBufferedTransport(thrift.NewTSocketConf(addr, conf), 8192)
	if err := transport.Open(); err != nil {
		return nil, err
	}
	protocol := thrift.NewTBinaryProtocolConf(transport, conf)
	return &link{transport, barista.NewBaristaClient(thrift.NewTStandardClient(protocol, protocol))}, nil
}

// Client is a connection to a Barista cluster.
type Client struct {
	replicas []string
	cfg      Config
	current  int
	link     *link
	con      barista.Connection
	nextSeq  int64
	closed   bool
}

// Connect opens a session on the first replica of replicas ("host:port") that answers.
func Connect(ctx context.Context, replicas []string, cfg Config) (*Client, error) {
	if len(replicas) == 0 {
		return nil, &UnavailableError{}
	}
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	c := &Client{replicas: append([]string(nil), replicas...), cfg: cfg.withDefaults(), nextSeq: 1}
	params := &barista.ConnectionParams{ConnectionID: &id}
	err = c.withFailover(ctx, func(l *link) error {
		con, err := l.client.OpenConnection(ctx, params)
		if err == nil {
			c.con = *con
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if c.con.ConnectionID == nil {
		c.con.ConnectionID = &id
	}
	c.con.RequestSeq = nil
	return c, nil
}

// randomID is a random positive connection id: chosen by the client, not the replica, so that an
// open_connection retried at another replica opens this one session.
func randomID() (int64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("barista: choosing a connection id: %w", err)
		}
		if id := int64(binary.BigEndian.Uint64(b[:]) >> 1); id != 0 {
			return id, nil
		}
	}
}

// Replica is the address of the replica in use.
func (c *Client) Replica() string { return c.replicas[c.current] }

// ConnectionID is the replicated session's id.
func (c *Client) ConnectionID() int64 { return c.con.GetConnectionID() }

// Exec runs one statement (autocommit, or in the open transaction) with parameters $1.. from
// args (nil is SQL NULL). A statement that fails returns an *Error with its SQLState.
func (c *Client) Exec(ctx context.Context, sql string, args ...any) (*Rows, error) {
	results, err := c.Batch(ctx, []Statement{{SQL: sql, Args: args}}, false)
	if err != nil {
		return nil, err
	}
	if len(results) != 1 {
		return nil, &Error{Code: CodeRejected, Message: fmt.Sprintf("%d results for one statement", len(results))}
	}
	return results[0].Rows, results[0].Err
}

// Batch runs the statements as one request (one replicated log entry). atomic: in one
// transaction, all or nothing; the failing statement's error is returned and nothing is kept.
// Otherwise each runs on its own, and each Result holds its Rows or its Err.
func (c *Client) Batch(ctx context.Context, stmts []Statement, atomic bool) ([]Result, error) {
	wire, err := statements(stmts)
	if err != nil {
		return nil, err
	}
	var sets []*barista.ResultSet
	err = c.request(ctx, func(l *link, con *barista.Connection) (err error) {
		sets, err = l.client.ExecuteSqlBatch(ctx, con, wire, atomic)
		return err
	})
	if err != nil {
		return nil, err
	}
	results := make([]Result, len(sets))
	for i, rs := range sets {
		if !rs.Status && rs.Error != nil {
			results[i].Err = fromException(rs.Error)
		} else {
			results[i].Rows = rowsFromThrift(rs)
		}
	}
	return results, nil
}

// Begin starts a transaction.
func (c *Client) Begin(ctx context.Context) error {
	return c.request(ctx, func(l *link, con *barista.Connection) error { return l.client.BeginTxn(ctx, con) })
}

// Commit commits the open transaction.
func (c *Client) Commit(ctx context.Context) error {
	return c.request(ctx, func(l *link, con *barista.Connection) error { return l.client.CommitTxn(ctx, con) })
}

// Rollback rolls back the open transaction.
func (c *Client) Rollback(ctx context.Context) error {
	return c.request(ctx, func(l *link, con *barista.Connection) error { return l.client.RollbackTxn(ctx, con) })
}

// InTx runs f in a transaction: it commits if f returns nil, and rolls back (returning f's
// error) otherwise.
func (c *Client) InTx(ctx context.Context, f func() error) error {
	if err := c.Begin(ctx); err != nil {
		return err
	}
	if err := f(); err != nil {
		if rbErr := c.Rollback(ctx); rbErr != nil {
			return fmt.Errorf("%w (and the rollback failed: %v)", err, rbErr)
		}
		return err
	}
	return c.Commit(ctx)
}

// Close closes the session on every replica (an open transaction rolls back). Later calls
// return ErrClosed; closing again returns nil.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.IOTimeout)
	defer cancel()
	err := c.request(ctx, func(l *link, con *barista.Connection) error { return l.client.CloseConnection(ctx, con) })
	c.closed = true
	c.drop()
	return err
}

// request runs one call under the next request number, retried with that same number until
// answered.
func (c *Client) request(ctx context.Context, call func(*link, *barista.Connection) error) error {
	if c.closed {
		return ErrClosed
	}
	con := c.con
	seq := c.nextSeq
	con.RequestSeq = &seq
	// Used up whatever happens: a replica may have run it even if no answer came back.
	c.nextSeq++
	return c.withFailover(ctx, func(l *link) error { return call(l, &con) })
}

func (c *Client) drop() {
	if c.link != nil {
		_ = c.link.transport.Close()
		c.link = nil
	}
}

// withFailover tries call on the replica in use, then on the next ones, for Rounds passes.
func (c *Client) withFailover(ctx context.Context, call func(*link) error) error {
	n := len(c.replicas)
	reasons := make([]ReplicaError, n)
	for i, r := range c.replicas {
		reasons[i] = ReplicaError{Replica: r, Err: errors.New("not tried")}
	}
	backoff := c.cfg.Backoff
	for attempt := 0; attempt < c.cfg.Rounds*n; attempt++ {
		if attempt > 0 && attempt%n == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = minDuration(backoff*2, 2*time.Second)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		i := c.current
		var err error
		if c.link == nil {
			c.link, err = dial(c.replicas[i], c.cfg)
		}
		if err == nil {
			err = call(c.link)
			var ex *barista.DBException
			switch {
			case err == nil:
				return nil
			case errors.As(err, &ex) && !tryElsewhere(ex):
				// An answer: the call failed, the same way on every replica.
				return fromException(ex)
			case errors.As(err, &ex):
				err = fromException(ex)
			}
		}
		// Not answered here (transport, protocol or application error; not ready; overloaded):
		// this connection's state is unknown, so drop it and go on to the next replica.
		reasons[i].Err = err
		c.drop()
		c.current = (i + 1) % n
	}
	return &UnavailableError{Reasons: reasons}
}

func minDuration(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}
