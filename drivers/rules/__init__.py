"""Pure domain rules shared by drivers and resolvers: no I/O, unit-tested on their own."""
