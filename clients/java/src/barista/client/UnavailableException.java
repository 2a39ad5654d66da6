package barista.client;

/**
 * No replica answered within the attempts allowed; the message lists each replica's last error. The
 * request may have run once (never twice): repeating it on a new connection is safe only for an
 * idempotent statement.
 */
public final class UnavailableException extends BaristaException {
    private static final long serialVersionUID = 1L;

    public UnavailableException(String message) {
        super(0, null, message);
    }
}
