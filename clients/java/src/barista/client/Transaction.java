package barista.client;

/**
 * A transaction as a try-with-resources block: begun by {@link BaristaClient#transaction()}, rolled back by
 * {@link #close()} unless {@link #commit()} was called, so an exception thrown inside leaves nothing behind.
 *
 * <pre>
 * try (Transaction txn = db.transaction()) {
 *     db.execute(...);
 *     txn.commit();
 * }
 * </pre>
 */
public final class Transaction implements AutoCloseable {
    private final BaristaClient db;
    private boolean done;

    Transaction(BaristaClient db) {
        this.db = db;
    }

    public void commit() throws BaristaException {
        // Once the commit is sent it is the transaction's outcome: close() must not send a rollback.
        done = true;
        db.commit();
    }

    public void rollback() throws BaristaException {
        done = true;
        db.rollback();
    }

    @Override
    public void close() throws BaristaException {
        if (!done) {
            rollback();
        }
    }
}
