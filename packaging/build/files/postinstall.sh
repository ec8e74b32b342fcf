#!/bin/sh
# Runs after the files are in place (deb: postinst configure; rpm: %post).
set -e
# The broker's unprivileged user.
if ! getent passwd marionette >/dev/null 2>&1; then
	useradd --system --user-group --home-dir /var/lib/marionette --no-create-home \
		--shell /usr/sbin/nologin --comment "Marionette broker" marionette
fi
# Keys live here: root reads them all, the broker (group marionette) the
# ones it is given with chgrp.
chgrp marionette /etc/marionette/ssl
chmod 0750 /etc/marionette/ssl
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# An upgrade restarts what was running; a first install starts nothing:
	# the node needs its certificate first (see install.md).
	systemctl try-restart mco-server.service mco-broker.service >/dev/null 2>&1 || true
fi
