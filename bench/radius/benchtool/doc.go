// Command benchtool is bench/radius.sh's helper for what the shell does
// badly:
//
//	benchtool ports N
//	    print N loopback ports that are free for both TCP and UDP
//	benchtool hist NAME [LABEL=VALUE...] BEFORE AFTER
//	    quantiles of a Prometheus histogram's increase between two scrapes
//	    of /metrics (series matching the labels are added up): count,
//	    mean_ms and p50/p90/p99_ms, interpolated linearly within buckets as
//	    Prometheus's histogram_quantile does
//	benchtool delta NAME [LABEL=VALUE...] BEFORE AFTER
//	    the increase of a counter (matching series added up)
//	benchtool changes PREFIX BEFORE AFTER
//	    every counter series whose name starts with PREFIX and that changed,
//	    with its increase (histograms' _bucket series left out)
//
// Output is key=value lines (hist) or plain numbers, for the shell.
package main
