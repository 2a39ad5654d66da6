package baristadb

import (
	"errors"
	"fmt"
	"strings"

	"barista/clients/go/gen/barista"
)

// The DBException error codes (see barista.thrift).
const (
	// CodeSQL: the statement failed in PostgreSQL, the same way on every replica; SQLState says why.
	CodeSQL = barista.ERR_SQL
	// CodeNotReady: the replica cannot serve now. The client retries elsewhere; you see it only
	// in an UnavailableError's reasons.
	CodeNotReady = barista.ERR_NOT_READY
	// CodeOverloaded: the replica has too much work. Retried elsewhere, like CodeNotReady.
	CodeOverloaded = barista.ERR_OVERLOADED
	// CodeRefused: Barista will not replicate the statement (it could make replicas differ);
	// nothing ran. SQLState is 0A000, or 42601 if it does not parse.
	CodeRefused = barista.ERR_REFUSED
	// CodeRejected: the call does not fit the connection's state (closed, COMMIT without BEGIN...).
	CodeRejected = barista.ERR_REJECTED
	// CodeBadRequest: the call is malformed or over a limit (SQLState 54000 for limits).
	CodeBadRequest = barista.ERR_BAD_REQUEST
)

// Error is a replica's answer that a call failed. Use errors.As to get it:
//
//	var dbErr *baristadb.Error
//	if errors.As(err, &dbErr) && dbErr.SQLState == "23505" { ... }
type Error struct {
	// Code is one of the Code* constants.
	Code int32
	// SQLState is PostgreSQL's SQLSTATE (five characters), when there is one.
	SQLState string
	// Message is the server's (for CodeSQL, PostgreSQL's) message.
	Message string
}

func (e *Error) Error() string {
	if e.SQLState != "" {
		return fmt.Sprintf("barista: %s (SQLSTATE %s)", e.Message, e.SQLState)
	}
	return "barista: " + e.Message
}

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("barista: the connection is closed")

// ReplicaError says why one replica did not answer.
type ReplicaError struct {
	Replica string
	Err     error
}

// UnavailableError: no replica answered within the attempts allowed. The call may have run once
// (never twice): retrying it with a new Client is safe only for an idempotent statement.
type UnavailableError struct {
	// Reasons holds each replica's last error.
	Reasons []ReplicaError
}

func (e *UnavailableError) Error() string {
	parts := make([]string, 0, len(e.Reasons))
	for _, r := range e.Reasons {
		parts = append(parts, fmt.Sprintf("%s: %v", r.Replica, r.Err))
	}
	if len(parts) == 0 {
		return "barista: no replica addresses"
	}
	return "barista: no replica answered: " + strings.Join(parts, "; ")
}

// fromException is the Error for a server's DBException.
func fromException(ex *barista.DBException) *Error {
	return &Error{Code: ex.GetErrorCode(), SQLState: ex.GetSqlstate(), Message: ex.GetMessage()}
}

// tryElsewhere: the exception means "this replica cannot serve now; another may".
func tryElsewhere(ex *barista.DBException) bool {
	code := ex.GetErrorCode()
	return code == CodeNotReady || code == CodeOverloaded
}
