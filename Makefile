# For tools that expect a PGXS-style extension (pgxn install, packaging recipes):
#
#   make install PG_CONFIG=/path/to/pg_config [DESTDIR=/staging/dir]
#
# does what `bash scripts/install.sh --pg-config /path/to/pg_config` does: build the release
# library and install it, the control file, the install script and the update scripts into that
# server, or, with DESTDIR, lay them out below DESTDIR at the paths pg_config names. The library
# is built by cargo-pgrx, so `make` alone has nothing to do.
PG_CONFIG ?= pg_config

all:
	@echo "pg_background is built and installed in one step: make install PG_CONFIG=$(PG_CONFIG)"

install:
	bash scripts/install.sh --pg-config "$$(command -v $(PG_CONFIG))" $(if $(DESTDIR),--destdir "$(DESTDIR)")

.PHONY: all install
