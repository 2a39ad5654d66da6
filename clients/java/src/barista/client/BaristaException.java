package barista.client;

/**
 * A failed call. {@link #getErrorCode()} is the server's {@code DBException.errorCode}
 * ({@link BaristaClient#ERR_SQL}, {@link BaristaClient#ERR_REFUSED}, {@link BaristaClient#ERR_REJECTED},
 * {@link BaristaClient#ERR_BAD_REQUEST}; see {@code barista.thrift}), or 0 for an error of the client itself
 * (no replica answered: {@link UnavailableException}; connection closed).
 */
public class BaristaException extends Exception {
    private static final long serialVersionUID = 1L;

    private final int errorCode;
    private final String sqlState;
    private final String serverMessage;

    public BaristaException(int errorCode, String sqlState, String message) {
        super(sqlState == null || sqlState.isEmpty() ? message : message + " (SQLSTATE " + sqlState + ")");
        this.errorCode = errorCode;
        this.sqlState = sqlState == null || sqlState.isEmpty() ? null : sqlState;
        this.serverMessage = message;
    }

    /** The server's error code, or 0 for an error of the client itself. */
    public int getErrorCode() {
        return errorCode;
    }

    /** The PostgreSQL SQLSTATE ({@code "23505"} for a unique violation), or null when there is none. */
    public String getSqlState() {
        return sqlState;
    }

    /** The server's message alone ({@link #getMessage()} adds the SQLSTATE to it). */
    public String getServerMessage() {
        return serverMessage;
    }
}
