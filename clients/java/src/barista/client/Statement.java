package barista.client;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/** One statement of a batch: SQL with parameters {@code $1, $2, ...} (see {@link BaristaClient#execute}). */
public final class Statement {
    private final String sql;
    private final List<Object> params;

    public Statement(String sql, Object... params) {
        this.sql = sql;
        // execute(sql, null) passes a null array, not an array holding null: one NULL parameter is meant.
        this.params = Collections.unmodifiableList(Arrays.asList(params == null ? new Object[] {null} : params));
    }

    public String sql() {
        return sql;
    }

    public List<Object> params() {
        return params;
    }
}
