// The PostgreSQL JDBC driver (pgjdbc, which DBeaver uses) against giamsat's PostgreSQL
// door (tests/it/pg.rs): what DBeaver does when it opens a PostgreSQL connection and
// browses it. Its JDBC metadata calls, a plain query and a query with a bound parameter,
// the column types of results, the data of every table as DBeaver's data tab reads it,
// then the catalog queries of DBeaver's own PostgreSQL navigator.
//
// Usage: java -cp /usr/share/java/postgresql.jar tests/clients/JdbcProbe.java PORT TOKEN
//
// Prints one JSON object: a key per step, with its result or {"error": message,
// "sqlstate": code} when the step failed. Each step runs on its own, so one failure does
// not hide the others.

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class JdbcProbe {
    /** One step: its result, or an exception. */
    interface Step {
        Object run() throws Exception;
    }

    /** The result of a step, or {"error": ..., "sqlstate": ...}. */
    static Object attempt(Step step) {
        try {
            return step.run();
        } catch (Exception e) {
            Map<String, Object> err = new LinkedHashMap<>();
            String message = e.getMessage() == null ? e.toString() : e.getMessage();
            err.put("error", message);
            if (e instanceof SQLException) {
                err.put("sqlstate", ((SQLException) e).getSQLState());
            }
            return err;
        }
    }

    /** The named columns of every row, as text. */
    static List<Object> columns(ResultSet rs, String... names) throws SQLException {
        List<Object> rows = new ArrayList<>();
        try (rs) {
            while (rs.next()) {
                if (names.length == 1) {
                    rows.add(rs.getString(names[0]));
                } else {
                    List<Object> row = new ArrayList<>();
                    for (String n : names) {
                        row.add(rs.getString(n));
                    }
                    rows.add(row);
                }
            }
        }
        return rows;
    }

    /** Every column of every row, as text. */
    static List<Object> rows(ResultSet rs) throws SQLException {
        List<Object> rows = new ArrayList<>();
        try (rs) {
            ResultSetMetaData md = rs.getMetaData();
            while (rs.next()) {
                List<Object> row = new ArrayList<>();
                for (int i = 1; i <= md.getColumnCount(); i++) {
                    row.add(rs.getString(i));
                }
                rows.add(row);
            }
        }
        return rows;
    }

    /**
     * The type names of a result's columns, read as a result grid reads them: the name and
     * the JDBC type of each column, then every value as an object.
     */
    static List<Object> types(ResultSet rs) throws SQLException {
        List<Object> names = new ArrayList<>();
        try (rs) {
            ResultSetMetaData md = rs.getMetaData();
            for (int i = 1; i <= md.getColumnCount(); i++) {
                names.add(md.getColumnTypeName(i));
                md.getColumnType(i);
            }
            while (rs.next()) {
                for (int i = 1; i <= md.getColumnCount(); i++) {
                    rs.getObject(i);
                }
            }
        }
        return names;
    }

    static void json(StringBuilder out, Object v) {
        if (v == null) {
            out.append("null");
        } else if (v instanceof Boolean || v instanceof Integer || v instanceof Long) {
            out.append(v);
        } else if (v instanceof Map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                json(out, e.getKey().toString());
                out.append(':');
                json(out, e.getValue());
            }
            out.append('}');
        } else if (v instanceof List) {
            out.append('[');
            boolean first = true;
            for (Object x : (List<?>) v) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                json(out, x);
            }
            out.append(']');
        } else {
            String s = v.toString();
            out.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    case '\r' -> out.append("\\r");
                    case '\t' -> out.append("\\t");
                    case '\b' -> out.append("\\b");
                    case '\f' -> out.append("\\f");
                    default -> {
                        if (c < 0x20) {
                            out.append(String.format("\\u%04x", (int) c));
                        } else {
                            out.append(c);
                        }
                    }
                }
            }
            out.append('"');
        }
    }

    static final String QUERY = "SELECT commune_code, count(*) AS n FROM dossier_facts "
            + "WHERE counted GROUP BY 1 ORDER BY 1";
    static final String BOUND = "SELECT commune_code, count(*) AS n FROM dossier_facts "
            + "WHERE counted AND commune_code = ? GROUP BY 1";
    // a catalog table opened in DBeaver's SQL editor: its columns have types such as
    // regnamespace and aclitem[]
    static final String CATALOG = "SELECT c.oid,c.* FROM pg_catalog.pg_class c "
            + "WHERE c.relname = 'dossiers'";

    // The queries of DBeaver's PostgreSQL navigator (DBeaver 25), in the order it sends
    // them when a connection opens, then when a schema (its tables and their sizes) and
    // a table (its columns, indexes and constraints) are shown. DBeaver reads these
    // catalogs itself rather than through the JDBC metadata calls. "?" is bound to the
    // database name, or to the oid of the schema or the table read before.
    static final String[][] DBEAVER = {
        {"current_schema", "SELECT current_schema(),session_user"},
        {"namespaces", "SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n\n"
            + "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0"
            + " AND d.classoid='pg_namespace'::regclass\nORDER BY nspname"},
        {"search_path", "SHOW search_path"},
        {"database", "SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname=?"},
        {"settings", "SELECT * FROM pg_catalog.pg_settings"
            + " where name='standard_conforming_strings'"},
        {"version", "SELECT version()"},
        {"types", "SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod)"
            + " as base_type_name, d.description\nFROM pg_catalog.pg_type t\n"
            + "LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem\n"
            + "LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid\n"
            + "LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid\n"
            + "WHERE t.typname IS NOT NULL AND (c.relkind IS NULL OR c.relkind = 'c')"
            + " AND (et.typcategory IS NULL OR et.typcategory <> 'C')"},
        {"classes", "SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid)"
            + " as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key \n"
            + "FROM pg_catalog.pg_class c\n"
            + "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0"
            + " AND d.classoid='pg_class'::regclass\n"
            + "WHERE c.relnamespace=? AND c.relkind not in ('i','I','c')"},
        {"sizes", "select c.oid,pg_catalog.pg_total_relation_size(c.oid) as total_rel_size,"
            + "pg_catalog.pg_relation_size(c.oid) as rel_size\nFROM pg_class c\n"
            + "WHERE c.relnamespace=?"},
        {"attributes", "SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true)"
            + " as def_value,dsc.description,dep.objid\n"
            + "FROM pg_catalog.pg_attribute a\n"
            + "INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)\n"
            + "LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid"
            + " AND a.attnum = ad.adnum)\n"
            + "LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid"
            + " AND a.attnum = dsc.objsubid)\n"
            + "LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i'"
            + " and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid\n"
            + "WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=?\n"
            + "ORDER BY a.attnum"},
        {"indexes", "SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,"
            + "tc.relname as tabrelname,dsc.description,"
            + "pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,"
            + "pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,"
            + "pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size,"
            + "pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans\n"
            + "FROM pg_catalog.pg_index i\n"
            + "INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid\n"
            + "INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid\n"
            + "LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid\n"
            + "WHERE  i.indrelid=? ORDER BY tabrelname, c.relname"},
        {"constraints", "SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,"
            + "d.description, case when c.contype='c' then "
            + "\"substring\"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy\n"
            + "FROM pg_catalog.pg_constraint c\n"
            + "INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid\n"
            + "LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid\n"
            + "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0"
            + " AND d.classoid='pg_constraint'::regclass\n"
            + "WHERE c.conrelid=?\nORDER BY c.oid"},
    };

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/giamsat";
        Map<String, Object> out = new LinkedHashMap<>();
        Connection conn;
        try {
            DriverManager.setLoginTimeout(30);
            conn = DriverManager.getConnection(url, "analyst", args[1]);
            out.put("connect", true);
        } catch (SQLException e) {
            out.put("connect", attempt(() -> {
                throw e;
            }));
            print(out);
            return;
        }
        try (conn) {
            DatabaseMetaData md = conn.getMetaData();
            out.put("product", attempt(() -> {
                Map<String, Object> p = new LinkedHashMap<>();
                p.put("name", md.getDatabaseProductName());
                p.put("version", md.getDatabaseProductVersion());
                p.put("driver", md.getDriverName() + " " + md.getDriverVersion());
                return p;
            }));
            out.put("schemas", attempt(() -> columns(md.getSchemas(), "TABLE_SCHEM")));
            out.put("tables", attempt(() -> columns(
                    md.getTables(null, "public", "%", new String[] {"TABLE"}), "TABLE_NAME")));
            out.put("views", attempt(() -> columns(
                    md.getTables(null, "public", "%", new String[] {"VIEW"}), "TABLE_NAME")));
            out.put("columns", attempt(() -> columns(
                    md.getColumns(null, "public", "dossiers", "%"), "COLUMN_NAME", "TYPE_NAME")));
            out.put("primary_keys", attempt(() -> columns(
                    md.getPrimaryKeys(null, "public", "dossiers"), "COLUMN_NAME")));
            out.put("imported_keys", attempt(() -> columns(
                    md.getImportedKeys(null, "public", "dossiers"),
                    "PKTABLE_NAME", "FKCOLUMN_NAME")));
            out.put("index_info", attempt(() -> columns(
                    md.getIndexInfo(null, "public", "dossiers", false, true),
                    "INDEX_NAME", "COLUMN_NAME")));
            out.put("query", attempt(() -> {
                try (Statement st = conn.createStatement()) {
                    return rows(st.executeQuery(QUERY));
                }
            }));
            // the column types of a result, which DBeaver's result grid reads; the driver
            // looks up in pg_type every type it does not know
            out.put("query_types", attempt(() -> {
                try (Statement st = conn.createStatement()) {
                    return types(st.executeQuery(QUERY));
                }
            }));
            out.put("catalog_types", attempt(() -> {
                try (Statement st = conn.createStatement()) {
                    return types(st.executeQuery(CATALOG));
                }
            }));
            out.put("bound", attempt(() -> {
                try (PreparedStatement ps = conn.prepareStatement(BOUND)) {
                    ps.setString(1, "11311");
                    return rows(ps.executeQuery());
                }
            }));
            out.put("grid", grid(conn, md));
            out.put("dbeaver", dbeaver(conn));
        }
        print(out);
    }

    /**
     * The data of every table and view as DBeaver's data tab reads it (the first 200 rows,
     * every value as an object): the number of rows of each, or its error.
     */
    static Object grid(Connection conn, DatabaseMetaData md) throws SQLException {
        List<Object> names;
        try {
            names = columns(md.getTables(null, "public", "%", new String[] {"TABLE", "VIEW"}),
                    "TABLE_NAME");
        } catch (SQLException e) {
            return attempt(() -> {
                throw e;
            });
        }
        Map<String, Object> out = new LinkedHashMap<>();
        for (Object name : names) {
            out.put(name.toString(), attempt(() -> {
                try (Statement st = conn.createStatement()) {
                    st.setMaxRows(200);
                    int n = 0;
                    try (ResultSet rs = st.executeQuery("SELECT * FROM public." + name)) {
                        ResultSetMetaData rmd = rs.getMetaData();
                        for (int i = 1; i <= rmd.getColumnCount(); i++) {
                            rmd.getColumnType(i);
                        }
                        while (rs.next()) {
                            n++;
                            for (int i = 1; i <= rmd.getColumnCount(); i++) {
                                rs.getObject(i);
                            }
                        }
                    }
                    Map<String, Object> r = new LinkedHashMap<>();
                    r.put("rows", n);
                    return r;
                }
            }));
        }
        return out;
    }

    /** DBeaver's navigator queries: the number of rows of each, or its error. */
    static Map<String, Object> dbeaver(Connection conn) {
        Map<String, Object> out = new LinkedHashMap<>();
        // the oids DBeaver reads from one answer and binds in the next
        long[] oids = {-1, -1};
        for (String[] q : DBEAVER) {
            String name = q[0];
            out.put(name, attempt(() -> {
                try (PreparedStatement ps = conn.prepareStatement(q[1])) {
                    if (name.equals("database")) {
                        ps.setString(1, "giamsat");
                    } else if (name.equals("classes") || name.equals("sizes")) {
                        ps.setLong(1, oids[0]);
                    } else if (q[1].contains("?")) {
                        ps.setLong(1, oids[1]);
                    }
                    int n = 0;
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            n++;
                            if (name.equals("namespaces")
                                    && "public".equals(rs.getString("nspname"))) {
                                oids[0] = rs.getLong("oid");
                            }
                            if (name.equals("classes")
                                    && "dossiers".equals(rs.getString("relname"))) {
                                oids[1] = rs.getLong("oid");
                            }
                        }
                    }
                    Map<String, Object> r = new LinkedHashMap<>();
                    r.put("rows", n);
                    return r;
                }
            }));
        }
        return out;
    }

    static void print(Map<String, Object> out) {
        StringBuilder s = new StringBuilder();
        json(s, out);
        System.out.println(s);
    }
}
