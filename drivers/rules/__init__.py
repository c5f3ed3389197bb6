"""Pure domain rules shared by drivers and resolvers: no I/O, no SQL, easy to unit test."""
