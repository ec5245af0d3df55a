module ergopy.bench/gorilla_echo

go 1.19

require github.com/gorilla/websocket v1.5.3
