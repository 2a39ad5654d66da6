package barista.sample;

import java.util.Arrays;
import java.util.List;

import barista.client.BaristaClient;
import barista.client.BaristaException;

/**
 * Inserts keys 1..N one request at a time, printing each acknowledged key: the failover demo.
 *
 * <pre>
 * java -cp build:/usr/share/java/thrift.jar:/usr/share/java/slf4j-nop.jar barista.sample.InsertLoop \
 *     127.0.0.1:9090,127.0.0.1:9091,127.0.0.1:9092 200
 * </pre>
 *
 * <p>Stop the replica it names in its "using" line while it runs: the insert in flight is retried at the next
 * replica under the same request number, so the loop finishes and every key is in the table exactly once (the
 * table has no unique key, so a request run twice would show as a duplicate row). Output, one line each,
 * flushed at once so a watcher can act on it:
 *
 * <pre>
 * using 127.0.0.1:9090          the replica in use, before the first insert and after a change
 * ack 17                        key 17 is committed
 * done 200                      every key acknowledged
 * </pre>
 */
public final class InsertLoop {
    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: InsertLoop HOST:PORT[,HOST:PORT...] N");
            System.exit(2);
        }
        List<String> replicas = Arrays.asList(args[0].split(","));
        int n = Integer.parseInt(args[1]);
        // System.out flushes at each println: each line reaches a watcher as it is printed.
        try (BaristaClient db = BaristaClient.connect(replicas)) {
            db.execute("CREATE TABLE IF NOT EXISTS acked (k int NOT NULL, note text)");
            String used = db.replica();
            System.out.println("using " + used);
            for (int k = 1; k <= n; k++) {
                db.execute("INSERT INTO acked (k, note) VALUES ($1, $2)", k, "java");
                if (!db.replica().equals(used)) {
                    used = db.replica();
                    System.out.println("using " + used);
                }
                System.out.println("ack " + k);
            }
        } catch (BaristaException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
        System.out.println("done " + n);
    }

    private InsertLoop() {}
}
