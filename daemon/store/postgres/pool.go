package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// pingAfter is how long a connection may sit idle before it is pinged
// before use: after a database restart, idle connections are dead, and
// the ping finds that out without costing a login its request.
const pingAfter = time.Second

// pool is a small connection pool over pgx.Conn: at most max connections,
// dialled on demand, pinged after being idle, and discarded after any
// error that may have left them unusable. (pgxpool would need
// github.com/jackc/puddle/v2, which this module does not pin.)
type pool struct {
	cfg   *pgx.ConnConfig
	setup func(context.Context, *pgx.Conn) error // run on each new connection
	slots chan struct{}                          // one token per connection in use

	mu     sync.Mutex // guards idle and closed
	idle   []idleConn
	closed bool
}

type idleConn struct {
	c     *pgx.Conn
	since time.Time
}

var errPoolClosed = errors.New("connection pool is closed")

func newPool(cfg *pgx.ConnConfig, size int, setup func(context.Context, *pgx.Conn) error) *pool {
	return &pool{cfg: cfg, setup: setup, slots: make(chan struct{}, size)}
}

// acquire returns a connection, waiting for a free slot until ctx ends;
// reused says it was idle in the pool (and so may have died since, which
// the first query finds out). The caller must pass it to release.
func (p *pool) acquire(ctx context.Context) (c *pgx.Conn, reused bool, err error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, fmt.Errorf("wait for a database connection: %w", context.Cause(ctx))
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			<-p.slots
			return nil, false, errPoolClosed
		}
		var ic idleConn
		if n := len(p.idle); n > 0 {
			ic = p.idle[n-1]
			p.idle = p.idle[:n-1]
		}
		p.mu.Unlock()
		if ic.c == nil {
			break
		}
		if ic.c.IsClosed() {
			continue
		}
		if time.Since(ic.since) < pingAfter {
			return ic.c, true, nil
		}
		if err := ic.c.Ping(ctx); err == nil {
			return ic.c, true, nil
		}
		closeConn(ic.c)
		p.dropIdle() // the server probably restarted: the rest are dead too
		if ctx.Err() != nil {
			<-p.slots
			return nil, false, fmt.Errorf("connect to the database: %w", context.Cause(ctx))
		}
	}
	c, err = pgx.ConnectConfig(ctx, p.cfg)
	if err == nil && p.setup != nil {
		if err = p.setup(ctx, c); err != nil {
			closeConn(c)
		}
	}
	if err != nil {
		<-p.slots
		return nil, false, err
	}
	return c, false, nil
}

// dropIdle closes every idle connection.
func (p *pool) dropIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, ic := range idle {
		closeConn(ic.c)
	}
}

// release returns c to the pool. A connection that failed (healthy false),
// was closed, or is still inside a transaction is closed instead; one
// that broke (pgx closed it after a network error) also closes the idle
// ones, which most likely lost their server too.
func (p *pool) release(c *pgx.Conn, healthy bool) {
	defer func() { <-p.slots }()
	if c.IsClosed() {
		p.dropIdle()
		return
	}
	if !healthy || c.PgConn().TxStatus() != 'I' {
		closeConn(c)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		closeConn(c)
		return
	}
	p.idle = append(p.idle, idleConn{c: c, since: time.Now()})
	p.mu.Unlock()
}

// close closes the idle connections and makes acquire fail; connections
// in use are closed when released.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.dropIdle()
}

// closeConn closes c without waiting long for a dead server. Closing a
// connection in a transaction makes the server roll it back.
func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Close(ctx)
}
