package barista.client;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A statement's result: column names and types, the rows (each cell in PostgreSQL's text form, the raw
 * bytes for bytea, null for SQL NULL) and the number of rows affected.
 */
public final class Rows {
    private final List<String> columns;
    private final List<String> types;
    private final List<List<byte[]>> rows;
    private final long rowsAffected;

    Rows(barista.ResultSet rs) {
        columns = rs.isSetField_names() ? rs.getField_names() : Collections.emptyList();
        types = rs.isSetField_types() ? rs.getField_types() : Collections.emptyList();
        rowsAffected = rs.isSetRows_affected() ? rs.getRows_affected() : 0;
        List<List<byte[]>> out = new ArrayList<>();
        if (rs.isSetTuples()) {
            for (barista.Tuple t : rs.getTuples()) {
                List<ByteBuffer> cells = t.isSetCells() ? t.getCells() : Collections.emptyList();
                List<Boolean> nulls = t.isSetNulls() ? t.getNulls() : Collections.emptyList();
                List<byte[]> row = new ArrayList<>(cells.size());
                for (int i = 0; i < cells.size(); i++) {
                    boolean isNull = i < nulls.size() && nulls.get(i);
                    row.add(isNull ? null : bytes(cells.get(i)));
                }
                out.add(Collections.unmodifiableList(row));
            }
        }
        rows = Collections.unmodifiableList(out);
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    public List<String> columns() {
        return columns;
    }

    /** Column types as PostgreSQL names them ({@code int4}, {@code text}, ...). */
    public List<String> types() {
        return types;
    }

    public int size() {
        return rows.size();
    }

    /** The cell at {@code row}, {@code column} as text, or null for SQL NULL. */
    public String getString(int row, int column) {
        byte[] cell = rows.get(row).get(column);
        return cell == null ? null : new String(cell, StandardCharsets.UTF_8);
    }

    /** The cell's raw bytes (bytea's content), or null for SQL NULL. */
    public byte[] getBytes(int row, int column) {
        byte[] cell = rows.get(row).get(column);
        return cell == null ? null : cell.clone();
    }

    public boolean isNull(int row, int column) {
        return rows.get(row).get(column) == null;
    }

    /** Rows inserted, updated or deleted (or returned, for a query). */
    public long rowsAffected() {
        return rowsAffected;
    }
}
