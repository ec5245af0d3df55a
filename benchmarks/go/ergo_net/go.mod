module ergopy.bench/ergo_net

go 1.20

require ergo.services/ergo v1.999.310
