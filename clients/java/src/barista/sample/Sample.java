package barista.sample;

import java.util.Arrays;
import java.util.List;

import barista.client.BaristaClient;
import barista.client.BaristaException;
import barista.client.Result;
import barista.client.Rows;
import barista.client.Statement;
import barista.client.Transaction;

/**
 * A tour of the Barista Java client against a running cluster.
 *
 * <pre>
 * java -cp build:/usr/share/java/thrift.jar:/usr/share/java/slf4j-nop.jar barista.sample.Sample \
 *     127.0.0.1:9090,127.0.0.1:9091,127.0.0.1:9092
 * </pre>
 *
 * <p>Connects to the first replica that answers, creates a table, inserts rows with parameters, runs a
 * transaction that commits and one that rolls back, sends a batch, reads the rows back (one with a NULL),
 * shows a constraint violation's SQLSTATE, and closes the connection. Each step prints one line; the last is
 * "done". (The same tour as the other languages' samples; server/tests/sample_java.rs checks every line.)
 */
public final class Sample {
    private static final String INSERT = "INSERT INTO fruit (id, name, color) VALUES ($1, $2, $3)";

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: Sample HOST:PORT[,HOST:PORT...]");
            System.exit(2);
        }
        List<String> replicas = Arrays.asList(args[0].split(","));
        try {
            try (BaristaClient db = BaristaClient.connect(replicas)) {
                tour(db);
            }
            // Leaving the try block closed the connection.
            System.out.println("closed");
            System.out.println("done");
        } catch (BaristaException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }

    private static void tour(BaristaClient db) throws BaristaException {
        System.out.println("connected to " + db.replica() + " (connection " + db.connectionId() + ")");

        db.execute("DROP TABLE IF EXISTS fruit");
        db.execute("CREATE TABLE fruit (id int PRIMARY KEY, name text NOT NULL, color text)");
        System.out.println("created table fruit");

        // Parameters $1.. travel typed; Java null is SQL NULL.
        long inserted = db.execute(INSERT, 1, "apple", "red").rowsAffected();
        inserted += db.execute(INSERT, 2, "banana", null).rowsAffected();
        System.out.println("inserted " + inserted + " rows");

        try (Transaction txn = db.transaction()) {
            db.execute(INSERT, 3, "cherry", "dark red");
            db.execute("UPDATE fruit SET color = $1 WHERE id = $2", "green", 1);
            txn.commit();
        }
        System.out.println("committed a transaction: cherry added, apple now green");

        db.begin();
        db.execute(INSERT, 4, "durian", "yellow");
        db.execute("DELETE FROM fruit WHERE id = $1", 2);
        db.rollback();
        System.out.println("rolled back a transaction: no durian, banana kept");

        // One request, one replicated log entry; atomic: all or nothing.
        List<Result> results = db.batch(Arrays.asList(
                new Statement(INSERT, 5, "elderberry", "purple"),
                new Statement(INSERT, 6, "fig", null),
                new Statement("UPDATE fruit SET color = upper(color) WHERE id = $1", 3)), true);
        long changed = 0;
        for (Result r : results) {
            changed += r.rows().rowsAffected();
        }
        System.out.println("batch of " + results.size() + " statements: " + changed + " rows changed");

        Rows rows = db.execute("SELECT id, name, color FROM fruit ORDER BY id");
        for (int i = 0; i < rows.size(); i++) {
            String color = rows.isNull(i, 2) ? "NULL" : rows.getString(i, 2);
            System.out.println("row " + rows.getString(i, 0) + " " + rows.getString(i, 1) + " " + color);
        }

        try {
            db.execute(INSERT, 1, "apricot", "orange");
            System.out.println("constraint violation: none (unexpected)");
        } catch (BaristaException e) {
            // PostgreSQL's message may go on with a DETAIL line; its first line says enough here.
            String firstLine = e.getServerMessage().split("\n", 2)[0];
            System.out.println("constraint violation: SQLSTATE " + e.getSqlState() + " (error code "
                    + e.getErrorCode() + "): " + firstLine);
        }
    }

    private Sample() {}
}
