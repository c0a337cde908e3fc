package local

// Argon2 holds the argon2id parameters for new password hashes. Hashes made
// with other parameters still verify and are rehashed at the next
// successful login.
type Argon2 struct {
	// Time is the number of passes. Default 3.
	Time uint32 `yaml:"time"`
	// MemoryKiB is the memory cost in KiB. Default 65536 (64 MiB).
	MemoryKiB uint32 `yaml:"memory_kib"`
	// Threads is the parallelism. Default 2.
	Threads uint8 `yaml:"threads"`
}

// DefaultArgon2 follows RFC 9106's second recommended option, scaled to the
// parallelism of a small server.
func DefaultArgon2() Argon2 { return Argon2{Time: 3, MemoryKiB: 64 * 1024, Threads: 2} }
