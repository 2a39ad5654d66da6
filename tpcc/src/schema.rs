//! The nine TPC-C tables (clause 1.3), the kit's own table of load-time constants, and the
//! stored procedures of procedures mode (one plpgsql function per transaction type).
//!
//! Everything here passes Barista's determinism policy: no `random()`, every row-picking `LIMIT`
//! has an `ORDER BY` on a unique key, and `now()` (which Barista replaces by the transaction's
//! leader-chosen timestamp) is the only time source.

/// The TPC-C tables in load order, with the columns that order their rows uniquely (for the
/// replica comparison of `check`). `history` has no key (clause 1.3): its rows are ordered by
/// their whole text.
pub const TABLES: [(&str, &str); 9] = [
    ("warehouse", "w_id"),
    ("district", "d_w_id, d_id"),
    ("customer", "c_w_id, c_d_id, c_id"),
    ("history", "history::text"),
    ("new_order", "no_w_id, no_d_id, no_o_id"),
    ("orders", "o_w_id, o_d_id, o_id"),
    ("order_line", "ol_w_id, ol_d_id, ol_o_id, ol_number"),
    ("item", "i_id"),
    ("stock", "s_w_id, s_i_id"),
];

/// The kit's own table: the load-time NURand constants and the warehouse count, so that `run`
/// can choose valid run-time constants and `check` knows the scale.
pub const META_TABLE: &str = "tpcc_meta";

/// Drops what a previous load left (tables and functions).
pub fn drop_statements() -> Vec<String> {
    let mut out: Vec<String> =
        PROCEDURES.iter().map(|(name, args, _)| format!("DROP FUNCTION IF EXISTS {name}({args})")).collect();
    let tables: Vec<&str> = TABLES.iter().map(|(t, _)| *t).chain([META_TABLE]).collect();
    out.push(format!("DROP TABLE IF EXISTS {}", tables.join(", ")));
    out
}

/// CREATE TABLE and CREATE INDEX statements, one per string.
pub const CREATE: &[&str] = &[
    "CREATE TABLE warehouse (
        w_id int NOT NULL PRIMARY KEY,
        w_name varchar(10) NOT NULL, w_street_1 varchar(20) NOT NULL, w_street_2 varchar(20) NOT NULL,
        w_city varchar(20) NOT NULL, w_state char(2) NOT NULL, w_zip char(9) NOT NULL,
        w_tax numeric(4,4) NOT NULL, w_ytd numeric(12,2) NOT NULL)",
    "CREATE TABLE district (
        d_id int NOT NULL, d_w_id int NOT NULL,
        d_name varchar(10) NOT NULL, d_street_1 varchar(20) NOT NULL, d_street_2 varchar(20) NOT NULL,
        d_city varchar(20) NOT NULL, d_state char(2) NOT NULL, d_zip char(9) NOT NULL,
        d_tax numeric(4,4) NOT NULL, d_ytd numeric(12,2) NOT NULL, d_next_o_id int NOT NULL,
        PRIMARY KEY (d_w_id, d_id))",
    "CREATE TABLE customer (
        c_id int NOT NULL, c_d_id int NOT NULL, c_w_id int NOT NULL,
        c_first varchar(16) NOT NULL, c_middle char(2) NOT NULL, c_last varchar(16) NOT NULL,
        c_street_1 varchar(20) NOT NULL, c_street_2 varchar(20) NOT NULL, c_city varchar(20) NOT NULL,
        c_state char(2) NOT NULL, c_zip char(9) NOT NULL, c_phone char(16) NOT NULL,
        c_since timestamptz NOT NULL, c_credit char(2) NOT NULL, c_credit_lim numeric(12,2) NOT NULL,
        c_discount numeric(4,4) NOT NULL, c_balance numeric(12,2) NOT NULL,
        c_ytd_payment numeric(12,2) NOT NULL, c_payment_cnt int NOT NULL, c_delivery_cnt int NOT NULL,
        c_data varchar(500) NOT NULL,
        PRIMARY KEY (c_w_id, c_d_id, c_id))",
    "CREATE INDEX customer_by_name ON customer (c_w_id, c_d_id, c_last, c_first, c_id)",
    "CREATE TABLE history (
        h_c_id int NOT NULL, h_c_d_id int NOT NULL, h_c_w_id int NOT NULL,
        h_d_id int NOT NULL, h_w_id int NOT NULL, h_date timestamptz NOT NULL,
        h_amount numeric(6,2) NOT NULL, h_data varchar(24) NOT NULL)",
    "CREATE TABLE new_order (
        no_o_id int NOT NULL, no_d_id int NOT NULL, no_w_id int NOT NULL,
        PRIMARY KEY (no_w_id, no_d_id, no_o_id))",
    "CREATE TABLE orders (
        o_id int NOT NULL, o_d_id int NOT NULL, o_w_id int NOT NULL, o_c_id int NOT NULL,
        o_entry_d timestamptz NOT NULL, o_carrier_id int, o_ol_cnt int NOT NULL, o_all_local int NOT NULL,
        PRIMARY KEY (o_w_id, o_d_id, o_id))",
    "CREATE INDEX orders_by_customer ON orders (o_w_id, o_d_id, o_c_id, o_id)",
    "CREATE TABLE order_line (
        ol_o_id int NOT NULL, ol_d_id int NOT NULL, ol_w_id int NOT NULL, ol_number int NOT NULL,
        ol_i_id int NOT NULL, ol_supply_w_id int NOT NULL, ol_delivery_d timestamptz,
        ol_quantity int NOT NULL, ol_amount numeric(6,2) NOT NULL, ol_dist_info char(24) NOT NULL,
        PRIMARY KEY (ol_w_id, ol_d_id, ol_o_id, ol_number))",
    "CREATE TABLE item (
        i_id int NOT NULL PRIMARY KEY, i_im_id int NOT NULL, i_name varchar(24) NOT NULL,
        i_price numeric(5,2) NOT NULL, i_data varchar(50) NOT NULL)",
    "CREATE TABLE stock (
        s_i_id int NOT NULL, s_w_id int NOT NULL, s_quantity int NOT NULL,
        s_dist_01 char(24) NOT NULL, s_dist_02 char(24) NOT NULL, s_dist_03 char(24) NOT NULL,
        s_dist_04 char(24) NOT NULL, s_dist_05 char(24) NOT NULL, s_dist_06 char(24) NOT NULL,
        s_dist_07 char(24) NOT NULL, s_dist_08 char(24) NOT NULL, s_dist_09 char(24) NOT NULL,
        s_dist_10 char(24) NOT NULL, s_ytd numeric(8,0) NOT NULL, s_order_cnt int NOT NULL,
        s_remote_cnt int NOT NULL, s_data varchar(50) NOT NULL,
        PRIMARY KEY (s_w_id, s_i_id))",
    "CREATE TABLE tpcc_meta (name text NOT NULL PRIMARY KEY, value bigint NOT NULL)",
];

/// The message with which New-Order's stored procedure rolls back on an unused item number
/// (clause 2.4.2.3); the driver recognises the rollback by it.
pub const ITEM_NOT_VALID: &str = "Item number is not valid";

/// The stored procedures: name, argument types (for DROP FUNCTION), and CREATE statement.
pub const PROCEDURES: [(&str, &str, &str); 5] = [
    ("tpcc_new_order", "int, int, int, int, int[], int[], int[]", NEW_ORDER),
    ("tpcc_payment", "int, int, int, int, int, text, numeric", PAYMENT),
    ("tpcc_order_status", "int, int, int, text", ORDER_STATUS),
    ("tpcc_delivery", "int, int", DELIVERY),
    ("tpcc_stock_level", "int, int, int", STOCK_LEVEL),
];

/// New-Order (clause 2.4.2): returns the order's total amount. The items come sorted by item
/// number, the invalid one (if any) last.
const NEW_ORDER: &str = r#"CREATE FUNCTION tpcc_new_order(p_w_id int, p_d_id int, p_c_id int, p_all_local int,
        p_item_ids int[], p_supply_w_ids int[], p_quantities int[]) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    v_w_tax numeric; v_d_tax numeric; v_o_id int;
    v_c_discount numeric; v_c_last text; v_c_credit text;
    v_i_price numeric; v_i_name text; v_i_data text;
    v_s_quantity int; v_s_data text; v_dist text; v_brand text;
    v_amount numeric; v_total numeric := 0; v_ol_cnt int := array_length(p_item_ids, 1);
BEGIN
    SELECT w_tax INTO v_w_tax FROM warehouse WHERE w_id = p_w_id;
    UPDATE district SET d_next_o_id = d_next_o_id + 1 WHERE d_w_id = p_w_id AND d_id = p_d_id
        RETURNING d_tax, d_next_o_id - 1 INTO v_d_tax, v_o_id;
    SELECT c_discount, c_last, c_credit INTO v_c_discount, v_c_last, v_c_credit
        FROM customer WHERE c_w_id = p_w_id AND c_d_id = p_d_id AND c_id = p_c_id;
    INSERT INTO orders (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_carrier_id, o_ol_cnt, o_all_local)
        VALUES (v_o_id, p_d_id, p_w_id, p_c_id, now(), NULL, v_ol_cnt, p_all_local);
    INSERT INTO new_order (no_o_id, no_d_id, no_w_id) VALUES (v_o_id, p_d_id, p_w_id);
    FOR i IN 1 .. v_ol_cnt LOOP
        SELECT i_price, i_name, i_data INTO v_i_price, v_i_name, v_i_data FROM item WHERE i_id = p_item_ids[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'Item number is not valid';
        END IF;
        UPDATE stock SET
            s_quantity = CASE WHEN s_quantity >= p_quantities[i] + 10 THEN s_quantity - p_quantities[i]
                              ELSE s_quantity - p_quantities[i] + 91 END,
            s_ytd = s_ytd + p_quantities[i],
            s_order_cnt = s_order_cnt + 1,
            s_remote_cnt = s_remote_cnt + CASE WHEN p_supply_w_ids[i] <> p_w_id THEN 1 ELSE 0 END
          WHERE s_i_id = p_item_ids[i] AND s_w_id = p_supply_w_ids[i]
          RETURNING s_quantity, s_data,
            CASE p_d_id WHEN 1 THEN s_dist_01 WHEN 2 THEN s_dist_02 WHEN 3 THEN s_dist_03 WHEN 4 THEN s_dist_04
                        WHEN 5 THEN s_dist_05 WHEN 6 THEN s_dist_06 WHEN 7 THEN s_dist_07 WHEN 8 THEN s_dist_08
                        WHEN 9 THEN s_dist_09 ELSE s_dist_10 END
          INTO v_s_quantity, v_s_data, v_dist;
        v_brand := CASE WHEN strpos(v_i_data, 'ORIGINAL') > 0 AND strpos(v_s_data, 'ORIGINAL') > 0 THEN 'B' ELSE 'G' END;
        v_amount := p_quantities[i] * v_i_price;
        v_total := v_total + v_amount;
        INSERT INTO order_line (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, ol_supply_w_id, ol_delivery_d,
                                ol_quantity, ol_amount, ol_dist_info)
            VALUES (v_o_id, p_d_id, p_w_id, i, p_item_ids[i], p_supply_w_ids[i], NULL, p_quantities[i], v_amount, v_dist);
    END LOOP;
    RETURN round(v_total * (1 - v_c_discount) * (1 + v_w_tax + v_d_tax), 2);
END
$$"#;

/// Payment (clause 2.5.2): `p_c_id` 0 selects the customer by last name. Returns the customer's id.
const PAYMENT: &str = r#"CREATE FUNCTION tpcc_payment(p_w_id int, p_d_id int, p_c_w_id int, p_c_d_id int, p_c_id int,
        p_c_last text, p_h_amount numeric) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    v_w_name text; v_d_name text; v_c_id int; v_n int; v_c_credit text; v_c_balance numeric;
BEGIN
    UPDATE warehouse SET w_ytd = w_ytd + p_h_amount WHERE w_id = p_w_id RETURNING w_name INTO v_w_name;
    UPDATE district SET d_ytd = d_ytd + p_h_amount WHERE d_w_id = p_w_id AND d_id = p_d_id RETURNING d_name INTO v_d_name;
    IF p_c_id = 0 THEN
        SELECT count(*) INTO v_n FROM customer WHERE c_w_id = p_c_w_id AND c_d_id = p_c_d_id AND c_last = p_c_last;
        SELECT c_id INTO v_c_id FROM customer WHERE c_w_id = p_c_w_id AND c_d_id = p_c_d_id AND c_last = p_c_last
            ORDER BY c_first, c_id OFFSET (v_n - 1) / 2 LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no customer named %', p_c_last;
        END IF;
    ELSE
        v_c_id := p_c_id;
    END IF;
    UPDATE customer SET c_balance = c_balance - p_h_amount, c_ytd_payment = c_ytd_payment + p_h_amount,
            c_payment_cnt = c_payment_cnt + 1,
            c_data = CASE WHEN c_credit = 'BC' THEN left(v_c_id || ' ' || p_c_d_id || ' ' || p_c_w_id || ' ' || p_d_id
                          || ' ' || p_w_id || ' ' || p_h_amount || ' | ' || c_data, 500) ELSE c_data END
        WHERE c_w_id = p_c_w_id AND c_d_id = p_c_d_id AND c_id = v_c_id
        RETURNING c_credit, c_balance INTO v_c_credit, v_c_balance;
    INSERT INTO history (h_c_id, h_c_d_id, h_c_w_id, h_d_id, h_w_id, h_date, h_amount, h_data)
        VALUES (v_c_id, p_c_d_id, p_c_w_id, p_d_id, p_w_id, now(), p_h_amount, v_w_name || '    ' || v_d_name);
    RETURN v_c_id;
END
$$"#;

/// Order-Status (clause 2.6.2): returns the number of order lines of the customer's last order.
const ORDER_STATUS: &str = r#"CREATE FUNCTION tpcc_order_status(p_w_id int, p_d_id int, p_c_id int, p_c_last text)
        RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    v_c_id int; v_n int; v_c_balance numeric; v_c_first text; v_o_id int; v_entry timestamptz;
    v_carrier int; v_lines int := 0; r record;
BEGIN
    IF p_c_id = 0 THEN
        SELECT count(*) INTO v_n FROM customer WHERE c_w_id = p_w_id AND c_d_id = p_d_id AND c_last = p_c_last;
        SELECT c_id INTO v_c_id FROM customer WHERE c_w_id = p_w_id AND c_d_id = p_d_id AND c_last = p_c_last
            ORDER BY c_first, c_id OFFSET (v_n - 1) / 2 LIMIT 1;
    ELSE
        v_c_id := p_c_id;
    END IF;
    SELECT c_balance, c_first INTO v_c_balance, v_c_first FROM customer
        WHERE c_w_id = p_w_id AND c_d_id = p_d_id AND c_id = v_c_id;
    SELECT o_id, o_entry_d, o_carrier_id INTO v_o_id, v_entry, v_carrier FROM orders
        WHERE o_w_id = p_w_id AND o_d_id = p_d_id AND o_c_id = v_c_id ORDER BY o_id DESC LIMIT 1;
    FOR r IN SELECT ol_i_id, ol_supply_w_id, ol_quantity, ol_amount, ol_delivery_d FROM order_line
            WHERE ol_w_id = p_w_id AND ol_d_id = p_d_id AND ol_o_id = v_o_id ORDER BY ol_number LOOP
        v_lines := v_lines + 1;
    END LOOP;
    RETURN v_lines;
END
$$"#;

/// Delivery (clause 2.7.4): returns the number of districts that had an order to deliver.
const DELIVERY: &str = r#"CREATE FUNCTION tpcc_delivery(p_w_id int, p_carrier_id int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    v_o_id int; v_c_id int; v_amount numeric; v_delivered int := 0;
BEGIN
    FOR v_d_id IN 1 .. 10 LOOP
        SELECT no_o_id INTO v_o_id FROM new_order WHERE no_w_id = p_w_id AND no_d_id = v_d_id
            ORDER BY no_o_id LIMIT 1 FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        DELETE FROM new_order WHERE no_w_id = p_w_id AND no_d_id = v_d_id AND no_o_id = v_o_id;
        UPDATE orders SET o_carrier_id = p_carrier_id WHERE o_w_id = p_w_id AND o_d_id = v_d_id AND o_id = v_o_id
            RETURNING o_c_id INTO v_c_id;
        UPDATE order_line SET ol_delivery_d = now() WHERE ol_w_id = p_w_id AND ol_d_id = v_d_id AND ol_o_id = v_o_id;
        SELECT COALESCE(sum(ol_amount), 0) INTO v_amount FROM order_line
            WHERE ol_w_id = p_w_id AND ol_d_id = v_d_id AND ol_o_id = v_o_id;
        UPDATE customer SET c_balance = c_balance + v_amount, c_delivery_cnt = c_delivery_cnt + 1
            WHERE c_w_id = p_w_id AND c_d_id = v_d_id AND c_id = v_c_id;
        v_delivered := v_delivered + 1;
    END LOOP;
    RETURN v_delivered;
END
$$"#;

/// Stock-Level (clause 2.8.2): returns the number of recently sold items below the threshold.
const STOCK_LEVEL: &str = r#"CREATE FUNCTION tpcc_stock_level(p_w_id int, p_d_id int, p_threshold int) RETURNS int
        LANGUAGE plpgsql AS $$
DECLARE
    v_next int; v_count int;
BEGIN
    SELECT d_next_o_id INTO v_next FROM district WHERE d_w_id = p_w_id AND d_id = p_d_id;
    SELECT count(DISTINCT s_i_id) INTO v_count FROM order_line, stock
        WHERE ol_w_id = p_w_id AND ol_d_id = p_d_id AND ol_o_id < v_next AND ol_o_id >= v_next - 20
          AND s_w_id = p_w_id AND s_i_id = ol_i_id AND s_quantity < p_threshold;
    RETURN v_count;
END
$$"#;
