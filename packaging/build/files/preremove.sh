#!/bin/sh
# Runs before the files go (deb: prerm; rpm: %preun). Stop the daemons only
# on removal, not on upgrade (deb: "remove"; rpm: 0 packages left).
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl stop mco-server.service mco-broker.service >/dev/null 2>&1 || true
		systemctl disable mco-server.service mco-broker.service >/dev/null 2>&1 || true
	fi
	;;
esac
