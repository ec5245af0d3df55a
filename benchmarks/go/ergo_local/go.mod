module ergopy.bench/ergo_local

go 1.20

require ergo.services/ergo v1.999.310
