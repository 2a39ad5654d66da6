package barista.client;

/** One statement's outcome in a batch: its rows, or the error it failed with. */
public final class Result {
    private final Rows rows;
    private final BaristaException error;

    Result(Rows rows, BaristaException error) {
        this.rows = rows;
        this.error = error;
    }

    public boolean isOk() {
        return error == null;
    }

    /** The statement's rows; throws its error if it failed. */
    public Rows rows() throws BaristaException {
        if (error != null) {
            throw error;
        }
        return rows;
    }

    /** The statement's error, or null if it succeeded. */
    public BaristaException error() {
        return error;
    }
}
