#!/bin/bash
# abp50.sh A B scenario rounds D -> per round p50 for A and B (both sides same binary), median ratio B/A
A=$1; B=$2; SC=${3:-pingpong-latency}; N=${4:-20}; D=${5:-2}
run() { local exe=$1 port=$((20000 + RANDOM % 20000))
  taskset -c 0 $exe server --runtime=tokio --port=$port >/dev/null 2>&1 & local spid=$!
  for i in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.02; done
  local out=$(taskset -c 1 $exe client --runtime=tokio --server_host=127.0.0.1 --server_port=$port --scenario=$SC --duration_s=$D 2>/dev/null | tail -1)
  kill $spid; wait $spid 2>/dev/null
  echo "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["p50_us"], r["rate"])'; }
for i in $(seq $N); do if [ $((i%2)) = 0 ]; then a=$(run $A); b=$(run $B); else b=$(run $B); a=$(run $A); fi; echo "$a | $b"; done | python3 -c '
import sys,statistics
P=[];R=[]
for l in sys.stdin:
  a,b=[list(map(float,x.split())) for x in l.split("|")]
  P.append(b[0]/a[0]); R.append(b[1]/a[1])
  print(l.strip(), " p50 B/A=%.3f rate B/A=%.3f"%(P[-1],R[-1]), flush=True)
print("median p50 B/A %.3f  rate B/A %.3f (n=%d)"%(statistics.median(P),statistics.median(R),len(P)))'
