//go:build root

package postgres

// SessionSetting returns a setting as one of the store's connections sees
// it (tests check the per-connection overrides).
func (d *DB) SessionSetting(name string) (string, error) {
	ctx, done, err := d.op()
	if err != nil {
		return "", err
	}
	defer done()
	c, _, err := d.pool.acquire(ctx)
	if err != nil {
		return "", err
	}
	var v string
	err = c.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v)
	d.pool.release(c, err == nil)
	return v, err
}
