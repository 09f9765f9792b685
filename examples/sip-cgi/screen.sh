#!/bin/sh
# Caller screening as a SIP-CGI script (RFC 3050), in POSIX sh: the same service as screen.py.
#
# For each INVITE: a caller whose From address is on the blocklist gets 403; every other call is proxied to one
# fixed target with an X-Screened header. Other methods: no output, so the server takes its default action.
#
#   SCREEN_BLOCKLIST  file of user@host addresses, one a line, '#' starts a comment (default: blocklist.txt here)
#   SCREEN_TARGET     where allowed calls go (default: sip:reception@127.0.0.1)

blocklist=${SCREEN_BLOCKLIST:-$(dirname "$0")/blocklist.txt}
target=${SCREEN_TARGET:-sip:reception@127.0.0.1}

[ "$REQUEST_METHOD" = INVITE ] || exit 0

# user@host of the From value (name-addr or addr-spec), lower-cased, without scheme, port or parameters.
from=${SIP_FROM:-}
case $from in
  *'<'*) uri=${from#*<}; uri=${uri%%>*} ;;
  *) uri=${from%%;*} ;;
esac
caller=$(printf '%s\n' "$uri" | sed -e 's/^[[:space:]]*[Ss][Ii][Pp][Ss]*://' -e 's/[;?].*//' -e 's/:[0-9]*$//' | tr 'A-Z' 'a-z')

if [ -f "$blocklist" ] && sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$blocklist" | tr 'A-Z' 'a-z' | grep -Fxq -e "$caller"; then
  printf 'SIP/2.0 403 Forbidden\r\n\r\n'
else
  printf 'CGI-PROXY-REQUEST %s SIP/2.0\r\nX-Screened: passed\r\n\r\n' "$target"
fi
