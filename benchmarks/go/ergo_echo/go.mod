module ergopy.bench/ergo_echo

go 1.20

require (
	ergo.services/ergo v1.999.310
	ergo.services/meta/websocket v0.0.0-20250904215344-e002b0fa33cd
)

require github.com/gorilla/websocket v1.5.3 // indirect
