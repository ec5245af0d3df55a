module ergopy.bench/ergo_local

go 1.21

require ergo.services/ergo v1.999.310
