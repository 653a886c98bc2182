# bench/report.awk: turns a run's facts and raw rows into the table
# (stdout) and the JSON file (-v json=FILE). Plain POSIX awk (mawk).
#
# usage: awk -F'\t' -v json=OUT -f report.awk FACTS RAW.tsv SCALING.tsv
# FACTS: key=value lines. RAW.tsv: run tool scenario status wall user sys
# rss_kib repo_bytes work_bytes load1 rc error. SCALING.tsv: the same
# columns, then files, chunks, and how chunks were obtained.

function median(list,    a, n, i, j, t) {
	n = split(list, a, " ")
	if (n == 0) return ""
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	if (n % 2) return a[(n + 1) / 2] + 0
	return (a[n / 2] + a[n / 2 + 1]) / 2
}
function add(key, v) { L[key] = (key in L) ? L[key] " " v : v }
function max(a, b) { return a + 0 > b + 0 ? a + 0 : b + 0 }
function jesc(s) {
	gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, " ", s)
	gsub(/[\001-\037]/, " ", s)
	return "\"" s "\""
}
function jnum(v) { return v == "" ? "null" : (v == int(v) && v < 1e15 && v > -1e15) ? sprintf("%.0f", v) : sprintf("%.6g", v) }
function mb(b) { return sprintf("%.1f", b / 1e6) }
function fmt_s(v) { return v == "" ? "-" : (v < 10 ? sprintf("%.2f", v) : sprintf("%.1f", v)) }
function overhead(r) {
	if (r < 0.97) return sprintf("%.2fx (S3 costs less)", r)
	if (r > 1.03) return sprintf("%.2fx (S3 costs more)", r)
	return sprintf("%.2fx about even", r)
}
function verdict(r, better, worse) {
	if (r < 0.97) return sprintf("%.2fx %s", r, better)
	if (r > 1.03) return sprintf("%.2fx KEEL LOSES (%s)", r, worse)
	return sprintf("%.2fx about even", r)
}

# ceiling_s: the least time the hardware allows for a scenario, from the
# ceilings measured in the same run (see README "Ceilings")
function ceiling_s(scen, repo,    np, sha, aes, z3c, z3d, ratio, src, rd, ch) {
	np = F["nproc"]; sha = F["sha256_MBps"] * 1e6; aes = F["aes256gcm_MBps"] * 1e6
	z3c = F["zstd3_c_MBps"] * 1e6; z3d = F["zstd3_d_MBps"] * 1e6; ratio = F["zstd3_ratio"]
	src = F["source_bytes"]
	if (np == "" || sha == 0 || aes == 0 || z3c == 0 || z3d == 0 || ratio == 0 || F["read_s"] == 0) return ""
	rd = src / F["read_s"]
	if (scen == "backup_initial")
		return max(F["read_s"], src * (1 / sha + 1 / z3c + 1 / (ratio * aes)) / np)
	if (scen == "backup_unchanged") return F["walk_s"]
	if (scen == "backup_mutated") {
		ch = median(CHANGED)
		return F["walk_s"] + ch * max(1 / rd, 1 / (sha * np))
	}
	if (scen == "restore") return max(F["tarx_s"], src * (1 / z3d + 1 / (ratio * aes) + 1 / sha) / np)
	if (scen == "restore_image" && F["image_bytes"] > 0)
		return F["image_bytes"] * (1 / z3d + 1 / (ratio * aes) + 1 / sha) / np
	if (scen == "check" && repo > 0) return max(repo / rd, (repo / aes + src / z3d + src / sha) / np)
	return ""
}

FILENAME == ARGV[1] {
	i = index($0, "=")
	if (i) {
		k = substr($0, 1, i - 1); F[k] = substr($0, i + 1)
		if (k ~ /^changed_bytes_run/) CHANGED = CHANGED " " F[k]
	}
	next
}
FILENAME == ARGV[2] {
	RAW_N++
	run = $1; tool = $2; scen = $3; st = $4; key = tool SUBSEP scen
	if (!(tool in SEEN_TOOL)) { SEEN_TOOL[tool] = 1; TOOLS_N++; TOOL_AT[TOOLS_N] = tool }
	if (scen == "verify") { VERIFY[tool] = st; if ($13 != "") VERIFY_ERR[tool] = $13; next }
	# verify_prune (check after forget+prune), verify_s3 (restore from S3 compared)
	if (scen ~ /^verify_/) { VX[scen, tool] = st; if ($13 != "") VX_ERR[scen, tool] = $13; next }
	SCEN_SEEN[scen] = 1; KEY_SEEN[key] = 1
	if (st == "ok") {
		add("wall" SUBSEP key, $5); add("cpu" SUBSEP key, $6 + $7); add("user" SUBSEP key, $6)
		add("sys" SUBSEP key, $7); add("rss" SUBSEP key, $8); add("repo" SUBSEP key, $9)
		add("bytes" SUBSEP key, $10); OK[key]++
	} else {
		BAD[key]++; ERR[key] = $13; BADST[key] = st
	}
	add("load" SUBSEP key, $11 == "" ? "?" : $11)
	next
}
FILENAME == ARGV[3] {
	SC_N++
	for (i = 1; i <= 16; i++) SC[SC_N, i] = $i
	next
}

END {
	ns = split("backup_initial backup_unchanged backup_mutated restore restore_image check list forget_prune s3_backup s3_restore", SCEN, " ")
	LABEL["backup_initial"] = "initial backup"
	LABEL["backup_unchanged"] = "backup, nothing changed"
	LABEL["backup_mutated"] = "backup after the mutation"
	LABEL["restore"] = "full restore of the latest snapshot"
	LABEL["restore_image"] = "restore of one large file (the disk image) from the latest snapshot"
	LABEL["check"] = "check --read-data (borg: check --verify-data)"
	LABEL["list"] = "list snapshots (cost of opening the repository)"
	LABEL["forget_prune"] = sprintf("forget %s --prune on %s snapshots over one year (restic: forget ... --prune)",
		F["prune_policy"], F["prune_snapshots"])
	LABEL["s3_backup"] = "initial backup to S3 (Ceph RADOS Gateway on 127.0.0.1; keel-local: keel to a local directory)"
	LABEL["s3_restore"] = "full restore from S3 (keel-local: from the local directory)"
	nt = split(F["tools"], TL, " ")
	# tools that are not in --tools but have rows of their own (keel-local)
	for (i = 1; i <= TOOLS_N; i++) {
		for (t = 1; t <= nt; t++) if (TL[t] == TOOL_AT[i]) break
		if (t > nt) { nt++; TL[nt] = TOOL_AT[i]; EXTRA[TOOL_AT[i]] = 1 }
	}

	printf "keel bench: %s mode, %s run(s) per figure, commit %s, %s\n", F["mode"], F["runs"], F["commit"], F["date"]
	printf "machine: %s x%s (%s), %.1f GiB RAM, Linux %s, %s; restic %s, borg %s, zstd %s, OpenSSL %s\n",
		F["cpu"], F["nproc"], F["cpu_flags"], F["mem_kib"] / 1048576, F["kernel"], F["fs"],
		F["restic_version"], F["borg_version"], F["zstd_version"], F["openssl_version"]
	printf "data: %s files, %s MB (Linux 6.1 source tree%s, %s MiB disk image, %s MiB SQL dump), seed %s\n",
		F["source_files"], mb(F["source_bytes"]), F["mode"] == "quick" ? " subset" : "", F["image_mib"], F["sql_mib"], F["seed"]
	if (F["mutation"] != "") printf "mutation (run 1): %s\n", F["mutation"]
	printf "keel: %s%s\n", F["keel_status"], F["keel_init_args"] != "" ? " (init " F["keel_init_args"] ")" : ""
	printf "ceilings, measured in this run (load %s): zstd -1 %s MB/s (ratio %s), zstd -3 %s MB/s (ratio %s),\n",
		F["ceiling_load1"], F["zstd1_c_MBps"], F["zstd1_ratio"], F["zstd3_c_MBps"], F["zstd3_ratio"]
	printf "  zstd -3 decompression %s MB/s, SHA-256 %s MB/s, AES-256-GCM %s MB/s (all one core);\n",
		F["zstd3_d_MBps"], F["sha256_MBps"], F["aes256gcm_MBps"]
	if (F["read_s"] > 0)
		printf "  reading the tree (tar c | wc) %.0f MB/s (%s s), stat walk %s s, tar c | tar x %s s (%.0f MB/s)\n",
			F["source_bytes"] / F["read_s"] / 1e6, F["read_s"], F["walk_s"], F["tarx_s"],
			(F["tarx_s"] > 0 ? F["source_bytes"] / F["tarx_s"] / 1e6 : 0)
	if (F["restore_fs"] != "") printf "%s\n", F["restore_fs"]
	printf "Figures are medians over the runs; \"load\" is the 1-minute load average before each run's command.\n"
	printf "%% ceiling = the hardware's least time for the scenario / the tool's wall time (100%% = at the ceiling).\n"

	out = json
	printf "{\n  \"schema\": \"keel-bench/1\",\n" > out
	printf "  \"date\": %s, \"commit\": %s, \"mode\": %s, \"runs\": %s,\n", jesc(F["date"]), jesc(F["commit"]), jesc(F["mode"]), jnum(F["runs"] + 0) > out
	printf "  \"machine\": {\"cpu\": %s, \"nproc\": %s, \"cpu_flags\": %s, \"mem_kib\": %s, \"kernel\": %s, \"fs\": %s, \"restore_fs\": %s},\n",
		jesc(F["cpu"]), jnum(F["nproc"] + 0), jesc(F["cpu_flags"]), jnum(F["mem_kib"] + 0), jesc(F["kernel"]), jesc(F["fs"]), jesc(F["restore_fs"]) > out
	printf "  \"versions\": {\"keel\": %s, \"restic\": %s, \"borg\": %s, \"zstd\": %s, \"openssl\": %s},\n",
		jesc(F["keel_version"]), jesc(F["restic_version"]), jesc(F["borg_version"]), jesc(F["zstd_version"]), jesc(F["openssl_version"]) > out
	printf "  \"keel\": {\"status\": %s, \"binary\": %s, \"init_args\": %s},\n", jesc(F["keel_status"]), jesc(F["keel_binary"]), jesc(F["keel_init_args"]) > out
	printf "  \"corpus\": {\"spec\": %s, \"source_bytes\": %s, \"source_files\": %s, \"image_mib\": %s, \"sql_mib\": %s, \"image_layout\": %s, \"mutation_run1\": %s},\n",
		jesc(F["spec"]), jnum(F["source_bytes"] + 0), jnum(F["source_files"] + 0), jnum(F["image_mib"] + 0), jnum(F["sql_mib"] + 0), jesc(F["image_layout"]), jesc(F["mutation"]) > out
	printf "  \"ceilings\": {\"load1\": %s, \"zstd1_MBps\": %s, \"zstd1_ratio\": %s, \"zstd3_MBps\": %s, \"zstd3_ratio\": %s, \"zstd3_decompress_MBps\": %s, \"sha256_MBps\": %s, \"aes256gcm_MBps\": %s, \"read_tree_s\": %s, \"stat_walk_s\": %s, \"tar_x_s\": %s},\n",
		jnum(F["ceiling_load1"]), jnum(F["zstd1_c_MBps"]), jnum(F["zstd1_ratio"]), jnum(F["zstd3_c_MBps"]), jnum(F["zstd3_ratio"]),
		jnum(F["zstd3_d_MBps"]), jnum(F["sha256_MBps"]), jnum(F["aes256gcm_MBps"]), jnum(F["read_s"]), jnum(F["walk_s"]), jnum(F["tarx_s"]) > out
	printf "  \"scenarios\": {" > out

	if (RAW_N == 0) { printf "\nscenarios: not run\n"; ns = 0 }
	shown = 0
	for (s = 1; s <= ns; s++) {
		sc = SCEN[s]
		if (!(sc in SCEN_SEEN)) continue
		shown++
		printf "\n%s\n", LABEL[sc]
		if (sc == "forget_prune") {
			line = ""
			for (t = 1; t <= nt; t++) if (("prune_before_" TL[t] "_snapshots") in F)
				line = line sprintf("%s%s %s -> %s snapshots (repo %s MB before)", line == "" ? "" : "; ", TL[t],
					F["prune_before_" TL[t] "_snapshots"], F["prune_after_" TL[t] "_snapshots"], mb(F["prune_before_" TL[t] "_bytes"]))
			printf "history built in %s s (not timed): %s\n", F["prune_build_s"], line
		}
		printf "%-10s %8s %10s %9s %9s %8s %7s  %s\n", "tool", "wall s", "user+sys s", "RSS MiB", "repo MB", "MB/s", "%ceil", "load per run"
		printf "%s\n    %s: {\"label\": %s, \"tools\": {", (shown > 1 ? "," : ""), jesc(sc), jesc(LABEL[sc]) > out
		tfirst = 1
		for (t = 1; t <= nt; t++) {
			tool = TL[t]; key = tool SUBSEP sc
			W[tool] = ""
			if ((tool in EXTRA) && !(key in KEY_SEEN)) continue
			printf "%s\n      %s: ", (tfirst ? "" : ","), jesc(tool) > out
			tfirst = 0
			if (OK[key] > 0) {
				w = median(L["wall" SUBSEP key]); c = median(L["cpu" SUBSEP key])
				r = median(L["rss" SUBSEP key]); rp = median(L["repo" SUBSEP key]); b = median(L["bytes" SUBSEP key])
				W[tool] = w; C[tool] = c; R[tool] = r; RP[tool] = rp
				rate = (w > 0 && b > 0) ? b / w / 1e6 : ""
				cs = ceiling_s(sc, rp); frac = (cs != "" && w > 0) ? cs / w : ""
				note = BAD[key] > 0 ? sprintf("  (%d of %d runs %s: %s)", BAD[key], BAD[key] + OK[key], BADST[key], ERR[key]) : ""
				printf "%-10s %8s %10s %9.1f %9s %8s %7s  %s%s\n", tool, fmt_s(w), fmt_s(c), r / 1024,
					sc == "list" ? "-" : mb(rp), rate == "" ? "-" : sprintf("%.1f", rate),
					frac == "" ? "-" : sprintf("%.0f%%", 100 * frac), L["load" SUBSEP key], note
				printf "{\"status\": \"ok\", \"runs_ok\": %d, \"runs_failed\": %d, \"wall_s\": %s, \"cpu_s\": %s, \"user_s\": %s, \"sys_s\": %s, \"peak_rss_kib\": %s, \"repo_bytes\": %s, \"work_bytes\": %s, \"MBps\": %s, \"ceiling_s\": %s, \"ceiling_fraction\": %s, \"wall_samples\": [%s], \"load1\": [%s]",
					OK[key], BAD[key], jnum(w), jnum(c), jnum(median(L["user" SUBSEP key])), jnum(median(L["sys" SUBSEP key])),
					jnum(r), jnum(rp), jnum(b), jnum(rate), jnum(cs), jnum(frac), csv(L["wall" SUBSEP key]), csv(L["load" SUBSEP key]) > out
				if (sc == "restore" && (tool in VERIFY))
					printf ", \"restore_verified\": %s", VERIFY[tool] == "ok" ? "true" : "false" > out
				if (sc == "s3_restore" && (("verify_s3" SUBSEP tool) in VX))
					printf ", \"restore_verified\": %s", VX["verify_s3", tool] == "ok" ? "true" : "false" > out
				if (sc == "forget_prune") {
					if (("verify_prune" SUBSEP tool) in VX)
						printf ", \"check_after_ok\": %s", VX["verify_prune", tool] == "ok" ? "true" : "false" > out
					printf ", \"snapshots_before\": %s, \"snapshots_after\": %s, \"repo_bytes_before\": %s",
						jnum(F["prune_before_" tool "_snapshots"]), jnum(F["prune_after_" tool "_snapshots"]),
						jnum(F["prune_before_" tool "_bytes"]) > out
				}
				if (BAD[key] > 0) printf ", \"error\": %s", jesc(ERR[key]) > out
				printf "}" > out
			} else {
				st = (key in BADST) ? BADST[key] : "n/a"
				msg = (key in ERR) ? ERR[key] : "not run"
				printf "%-10s %8s  %s\n", tool, st == "fail" ? "FAILED" : "n/a", msg
				printf "{\"status\": %s, \"error\": %s}", jesc(st == "fail" ? "failed" : "n/a"), jesc(msg) > out
			}
		}
		printf "}" > out
		# keel against each peer, in words where it loses
		if (W["keel"] != "") {
			printf ", \"keel_vs\": {" > out
			first = 1
			for (t = 1; t <= nt; t++) {
				p = TL[t]
				if (p == "keel" || W[p] == "" || W[p] == 0) continue
				rw = W["keel"] / W[p]; rc_ = C[p] > 0 ? C["keel"] / C[p] : ""; rr = R[p] > 0 ? R["keel"] / R[p] : ""
				rrp = (sc != "list" && RP[p] > 0) ? RP["keel"] / RP[p] : ""
				repo_too = sc ~ /^(backup|forget_prune|s3_backup)/
				if (p == "keel-local") {
					# keel against itself: what S3 costs over a local directory
					line = "wall " overhead(rw)
					if (rc_ != "") line = line " | cpu " overhead(rc_)
					if (rr != "") line = line " | RSS " overhead(rr)
					printf "  keel on S3/keel local: %s\n", line
				} else {
					line = "wall " verdict(rw, "faster", "slower")
					if (rc_ != "") line = line " | cpu " verdict(rc_, "less", "more CPU")
					if (rr != "") line = line " | RSS " verdict(rr, "less", "more memory")
					if (rrp != "" && repo_too) line = line " | repo " verdict(rrp, "smaller", "bigger repository")
					printf "  keel/%s: %s\n", p, line
				}
				printf "%s%s: {\"wall\": %s, \"cpu\": %s, \"rss\": %s, \"repo\": %s}", first ? "" : ", ", jesc(p),
					jnum(rw), jnum(rc_), jnum(rr), jnum(repo_too && p != "keel-local" ? rrp : "") > out
				first = 0
			}
			printf "}" > out
		} else if ("keel" in SEEN_TOOL) {
			printf "  keel/restic, keel/borg: n/a (no keel figure)\n"
		}
		cs = ceiling_s(sc, 0)
		printf ", \"ceiling_s\": %s}", jnum(cs) > out
		if (cs != "") printf "  hardware ceiling: %s s\n", fmt_s(cs)
	}
	printf "\n  },\n" > out

	# verification of restores (first run, untimed)
	vline = ""
	for (t = 1; t <= nt; t++) if (TL[t] in VERIFY)
		vline = vline sprintf("%s %s%s; ", TL[t], VERIFY[TL[t]] == "ok" ? "identical" : "DIFFERS",
			(TL[t] in VERIFY_ERR) ? " (" VERIFY_ERR[TL[t]] ")" : "")
	if (vline != "") printf "\nrestored trees compared with the data (run 1): %s\n", vline
	for (q = 1; q <= 2; q++) {
		vs = q == 1 ? "verify_prune" : "verify_s3"
		vline = ""
		for (t = 1; t <= nt; t++) if ((vs SUBSEP TL[t]) in VX)
			vline = vline sprintf("%s %s%s; ", TL[t], VX[vs, TL[t]] == "ok" ? (q == 1 ? "no errors" : "identical") : (q == 1 ? "ERRORS" : "DIFFERS"),
				((vs SUBSEP TL[t]) in VX_ERR) ? " (" VX_ERR[vs, TL[t]] ")" : "")
		if (vline != "")
			printf "%s (run 1): %s\n", q == 1 ? "check --read-data after forget+prune" : "trees restored from S3 compared with the data", vline
	}

	# scaling
	printf "  \"scaling\": [" > out
	if (SC_N > 0) {
		printf "\nscaling: initial backup of generated data, one run per point\n"
		printf "%-16s %-7s %9s %9s %8s %8s %9s %9s %10s  %s\n", "point", "tool", "files", "data MB", "wall s", "MB/s", "RSS MiB", "chunks", "RSS/chunk", "load"
	}
	for (i = 1; i <= SC_N; i++) {
		tool = SC[i, 2]; name = SC[i, 3]; st = SC[i, 4]
		printf "%s\n    {\"point\": %s, \"tool\": %s, \"status\": %s", (i > 1 ? "," : ""), jesc(name), jesc(tool), jesc(st) > out
		if (st == "ok") {
			w = SC[i, 5]; r = SC[i, 8]; b = SC[i, 10]; ch = SC[i, 15]
			per = ch > 0 ? r * 1024 / ch : ""
			printf "%-16s %-7s %9s %9s %8s %8.1f %9.1f %9s %10s  %s\n", name, tool, SC[i, 14], mb(b), fmt_s(w),
				(w > 0 ? b / w / 1e6 : 0), r / 1024, ch (SC[i, 16] == "estimated" ? "~" : ""),
				per == "" ? "-" : sprintf("%.0f B", per), SC[i, 11]
			printf ", \"wall_s\": %s, \"cpu_s\": %s, \"peak_rss_kib\": %s, \"repo_bytes\": %s, \"data_bytes\": %s, \"files\": %s, \"chunks\": %s, \"chunks_source\": %s, \"rss_bytes_per_chunk\": %s, \"load1\": %s",
				jnum(w), jnum(SC[i, 6] + SC[i, 7]), jnum(r), jnum(SC[i, 9]), jnum(b), jnum(SC[i, 14]), jnum(ch), jesc(SC[i, 16]), jnum(per), jnum(SC[i, 11]) > out
			# growth: memory per chunk between the smallest and the largest point
			# per series: "files_*" (many small files) and "data_*" (big data)
			if (ch > 0) {
				ser = name; sub(/_.*/, "", ser); k = tool SUBSEP ser
				if (!(k in LO) || ch < SC[LO[k], 15] + 0) LO[k] = i
				if (!(k in HI) || ch > SC[HI[k], 15] + 0) HI[k] = i
				SERIES[k] = 1
			}
		} else {
			printf "%-16s %-7s %s: %s\n", name, tool, st == "fail" ? "FAILED" : "n/a", SC[i, 13]
			printf ", \"error\": %s", jesc(SC[i, 13]) > out
		}
		printf "}" > out
	}
	printf "\n  ],\n  \"scaling_rss_bytes_per_extra_chunk\": {" > out
	first = 1
	if (SC_N > 0)
		printf "RSS/chunk = peak RSS / stored chunks (blobs); \"~\" = chunk count estimated as one per started MiB of each file\n"
	for (t = 1; t <= nt; t++) for (q = 1; q <= 2; q++) {
		tool = TL[t]; ser = q == 1 ? "files" : "data"; k = tool SUBSEP ser
		if (!(k in LO) || LO[k] == HI[k] || SC[HI[k], 15] == SC[LO[k], 15]) continue
		lo = LO[k]; hi = HI[k]
		d = (SC[hi, 8] - SC[lo, 8]) * 1024 / (SC[hi, 15] - SC[lo, 15])
		printf "%s: peak RSS grows by %.0f bytes per extra stored chunk from %s to %s%s\n", tool, d, SC[lo, 3], SC[hi, 3],
			(SC[hi, 16] == "estimated" || SC[lo, 16] == "estimated") ? " (chunk counts estimated)" : ""
		printf "%s%s: %s", first ? "" : ", ", jesc(tool "/" ser), jnum(d) > out
		first = 0
	}
	printf "},\n  \"elapsed_s\": %s\n}\n", jnum(F["elapsed_s"]) > out
	close(out)
}
function csv(list,    a, n, i, s) {
	n = split(list, a, " ")
	s = ""
	for (i = 1; i <= n; i++) s = s (i > 1 ? ", " : "") (a[i] == "?" ? "null" : a[i] + 0)
	return s
}
