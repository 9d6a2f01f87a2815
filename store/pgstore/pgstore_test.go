package pgstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/maildesk/maildesk/store"
	"github.com/maildesk/maildesk/store/pgstore"
	"github.com/maildesk/maildesk/store/pgstore/pgtest"
	"github.com/maildesk/maildesk/store/storetest"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, store.KeySize) }

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

func testURL(t *testing.T) string { return pgtest.URL(t) }

func schemaName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "t_" + hex.EncodeToString(b)
}

// openFresh opens a store on its own schema, dropped after the test.
func openFresh(t *testing.T, key []byte, now func() time.Time) (*pgstore.Store, string) {
	t.Helper()
	url := testURL(t)
	schema := schemaName()
	s, err := pgstore.Open(url, key, pgstore.Options{Now: now, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		conn, err := pgx.Connect(context.Background(), url)
		if err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			conn.Close(context.Background())
		}
	})
	return s, schema
}

// dump returns every value of every table of schema, bytea as raw bytes.
func dump(t *testing.T, schema string) []byte {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name", schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, tb := range tables {
		rows, err := conn.Query(ctx, "SELECT * FROM "+pgx.Identifier{schema, tb}.Sanitize())
		if err != nil {
			t.Fatal(err)
		}
		// Rows in a stable order: a heap's order may change without a write.
		var lines [][]byte
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			var row bytes.Buffer
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					row.Write(v)
				case string:
					row.WriteString(v)
				default:
					b, _ := json.Marshal(v)
					row.Write(b)
				}
				row.WriteByte(0)
			}
			lines = append(lines, row.Bytes())
		}
		rows.Close()
		sort.Slice(lines, func(i, j int) bool { return bytes.Compare(lines[i], lines[j]) < 0 })
		for _, l := range lines {
			out.Write(l)
		}
	}
	return out.Bytes()
}

// The PostgreSQL store passes the store suite; its raw dump is every
// value of every table.
func TestPostgresStoreSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) (storetest.Store, func() []byte) {
		s, schema := openFresh(t, testKey(1), now)
		return s, func() []byte { return dump(t, schema) }
	})
}

// A wrong key is refused at Open and changes nothing; reopening with the
// right key finds the data; the schema is migrated once.
func TestPostgresWrongKeyAndReopen(t *testing.T) {
	url := testURL(t)
	s, schema := openFresh(t, testKey(1), nil)
	mb, err := s.CreateMailbox(store.Mailbox{MailboxConfig: store.MailboxConfig{Email: "anna@contoso.com"}})
	if err != nil {
		t.Fatal(err)
	}
	before := dump(t, schema)
	if _, err := pgstore.Open(url, testKey(2), pgstore.Options{Schema: schema}); !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("open with another key: %v, want ErrWrongKey", err)
	}
	if after := dump(t, schema); !bytes.Equal(before, after) {
		t.Fatal("a failed open with the wrong key changed the database")
	}
	s2, err := pgstore.Open(url, testKey(1), pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := s2.Mailbox(mb.ID); err != nil || got.Email != "anna@contoso.com" {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	if err := s2.Ping(); err != nil {
		t.Fatal(err)
	}
}

// Due items, the next due time and a mailbox's batch use the outbox's
// indexes, not a scan of the table.
func TestPostgresOutboxQueriesUseIndexes(t *testing.T) {
	url := testURL(t)
	_, schema := openFresh(t, testKey(1), nil)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Enough rows, with statistics, that the planner has a choice.
	if _, err := conn.Exec(ctx, `INSERT INTO outbox (seq, mailbox_id, graph_id, next_at, failed, header, payload)
		SELECT g, 'mbx_' || (g % 500), 'g' || g, g * 1000, g % 10 = 0, '{}'::jsonb, '\x00'::bytea FROM generate_series(1, 50000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ANALYZE outbox"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SELECT header, payload FROM outbox WHERE NOT failed AND next_at <= 5000 ORDER BY seq",
		"SELECT mailbox_id, next_at FROM outbox WHERE NOT failed ORDER BY next_at, seq LIMIT 1",
		"SELECT header, payload FROM outbox WHERE mailbox_id = 'mbx_7' AND NOT failed AND next_at <= 99999999 ORDER BY seq LIMIT 50",
	} {
		var plan string
		rows, err := conn.Query(ctx, "EXPLAIN "+q)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			plan += l + "\n"
		}
		if bytes.Contains([]byte(plan), []byte("Seq Scan on outbox")) {
			t.Errorf("%s\nscans the whole outbox:\n%s", q, plan)
		}
	}
}

var _ = fmt.Sprint
