module ergopy.bench/loadclient

go 1.19
