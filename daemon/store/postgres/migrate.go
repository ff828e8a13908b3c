package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationFiles are the schema's versions: migrations/NNN_name.sql takes
// the schema from version NNN-1 to NNN. Files are never edited once
// released; a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the advisory lock that serializes
// migrations when several otpgated instances start at once ("otpg").
const migrationLock = 0x6f747067

// migrationTimeout bounds a migration, which may have to wait for another
// instance's.
const migrationTimeout = time.Minute

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order; versions
// must be 1, 2, 3... without gaps.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("postgres: migration file %q is not named NNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("postgres: migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this build creates and expects.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		panic(err) // the embedded files are fixed at build time
	}
	return len(ms)
}

// migrate brings the schema to SchemaVersion inside one transaction that
// holds an advisory lock, so that instances starting together migrate
// once. A database at a newer version is refused with ErrSchemaTooNew.
func (d *DB) migrate() error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), migrationTimeout)
	defer cancel()
	c, _, err := d.pool.acquire(ctx)
	if err != nil {
		return fmt.Errorf("%s: connect: %w", d.name, err)
	}
	healthy := false
	defer func() { d.pool.release(c, healthy) }()
	// The lock wait may be longer than the connection's statement and
	// lock timeouts.
	tx, err := c.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", d.name, err)
	}
	defer tx.Rollback(ctx)
	stmts := []string{
		"SET LOCAL statement_timeout = 0",
		"SET LOCAL lock_timeout = 0",
		fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLock),
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: migrate: %w", d.name, err)
		}
	}
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('otpgate_schema_version') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("%s: migrate: %w", d.name, err)
	}
	current := 0
	if !exists {
		_, err := tx.Exec(ctx, `CREATE TABLE otpgate_schema_version (
	version    integer PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`)
		if err != nil {
			return fmt.Errorf("%s: create otpgate_schema_version: %w", d.name, err)
		}
	} else if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM otpgate_schema_version").Scan(&current); err != nil {
		return fmt.Errorf("%s: read schema version: %w", d.name, err)
	}
	if current > len(ms) {
		return fmt.Errorf("%s: schema version %d, this otpgated knows up to %d: %w", d.name, current, len(ms), ErrSchemaTooNew)
	}
	for _, m := range ms[current:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("%s: migration %s: %w", d.name, m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO otpgate_schema_version (version) VALUES ($1)", m.version); err != nil {
			return fmt.Errorf("%s: migration %s: %w", d.name, m.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: migrate: %w", d.name, err)
	}
	healthy = true
	return nil
}
