"""Pure domain rules shared by drivers and resolvers: no SQL, no I/O (ARCHITECTURE.md)."""
