#!/usr/bin/env bash
# run.sh: the generic RescoreBERT pipeline (ESPnet-template style, kept thin). Run it from a recipe
# directory (egs/<corpus>/run.sh does: it cds there and passes the corpus options); paths such as
# data/, exp/, conf/ and local/data.sh are relative to that directory.
#
# Stages (--stage N --stop_stage M runs N..M; every Python step skips itself when its .done is up to date):
#   0  data preparation: the recipe's local/data.sh $data_opts -> $datadir/<set> dataset directories
#   1  lattices -> n-best (when --lattices DIR is given): DIR/<set> (--lattice_format kaldi-lattice|slf)
#      imported with references $datadir/<set>/text into $datadir/<set>
#   2  teacher domain adaptation (--teacher_adapt true): train_mlm --init $teacher on $teacher_text
#      -> $expdir/teacher_adapt/model
#   3  teacher PLL of every set (train, dev, eval), split over --nj jobs -> $expdir/teacher/<set>/pll
#   4  MD student: init = $student_init (default the teacher of stage 3), cut to its first
#      --student_layers layers when > 0 (-> $expdir/student_init); distilled -> $expdir/student_md
#   5  discriminative students from the MD student, mwer and/or mwed (those in --systems)
#      -> $expdir/student_<mwer|mwed>
#   6  score dev and eval sets with the baseline LM (train_clm on $clm_text -> $expdir/clm, score_clm),
#      the teacher (stage 3) and every student (score_student); per system in --systems: tune the
#      weights on dev and rescore (python -m rescore.bin.rescore) -> $expdir/rescore/<system>
#   7  RESULTS.md of the recipe (gather_results: for each eval set first pass, oracle, one row per
#      system) and $expdir/results.json; with --export_lattices true, Kaldi decode-dir lattices
#      $expdir/rescore/<system>/decode_<set> (export_nbest --format kaldi-lattice)
#
# --dry_run true prints every command instead of running it. $expdir/run.sh.replay keeps the exact
# command line of the last run; each Python step writes its resolved config (config.yaml / run.yaml).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
orig_args=("$@")
export PATH="$root/utils:$PATH"
# this checkout's package, whatever rescore is installed (an editable install may point elsewhere)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHON=${PYTHON:-python3}
python=$PYTHON
. "$root/utils/log.sh"

# ---- defaults (every variable is an option: --name value) ----
stage=0                 # first stage to run
stop_stage=100          # last stage to run
nj=4                    # parallel scoring jobs (stages 3, 6)
cmd=run.pl              # job runner; recipes pass $train_cmd of their cmd.sh
ngpu=0                  # GPUs (0: CPU); scoring jobs and LM training use 1, students > 1 with torchrun
dry_run=false           # true: print the commands, run nothing
datadir=data            # dataset directories $datadir/<set>
expdir=exp              # experiments
train_set=train         # n-best set the students train on
dev_set=dev             # n-best set the weights are tuned on
eval_sets="test"        # space-separated eval sets
lang=en                 # language of imported sets (stage 1)
data_opts=              # options of local/data.sh
lattices=               # stage 1: directory holding one lattice directory per set
lattice_format=slf      # stage 1: kaldi-lattice or slf
import_opts=            # stage 1: more import_nbest options (e.g. "--nbest 50")
teacher=bert-base-uncased  # teacher masked LM (hub id or directory)
teacher_adapt=false     # stage 2: adapt the teacher on $teacher_text
teacher_text=           # in-domain text, one sentence per line (stage 2)
heldout_text=           # held-out in-domain text (--dev_text of train_mlm, train_clm; default: a share of the text)
pll_opts=               # more score_pll options (e.g. "--batch_tokens 8192 --dtype bf16")
student_init=           # student encoder (default: the teacher of stage 3)
student_layers=0        # > 0: keep the first N layers of $student_init
student_score_opts=     # more score_student options
clm_text=               # baseline LM training text (default: $teacher_text)
systems="clm pll md mwer mwed"  # systems to rescore with (stage 6) and report (stage 7)
conf_dir=conf           # where the default configs are (e.g. conf/debug)
mlm_config=             # default $conf_dir/train_mlm.yaml
clm_config=             # default $conf_dir/train_clm.yaml
md_config=              # default $conf_dir/md.yaml
mwer_config=            # default $conf_dir/mwer.yaml
mwed_config=            # default $conf_dir/mwed.yaml
rescore_opts=           # more rescore options (e.g. "--cer --bootstrap 200")
results=RESULTS.md      # stage 7: the table is written between its markers
export_lattices=false   # stage 7: Kaldi lattices of the rescored eval sets
export_opts=            # more export_nbest options (--words lang/words.txt; --new_symbol_table true
                        # for sets whose recogniser has no words.txt, e.g. pocketsphinx or ESPnet)

help_message="usage: $0 [options]   (run from a recipe directory; see the header of $0 for the stages)
  --stage N --stop_stage M   stages to run (default $stage..$stop_stage)
  --nj N --cmd CMD --ngpu N  jobs, job runner, GPUs (default $nj, $cmd, $ngpu)
  --dry_run true|false       print the commands instead of running them
  --datadir DIR --expdir DIR --train_set S --dev_set S --eval_sets 'S1 S2' --lang L
  --data_opts 'OPTS'         options of local/data.sh (stage 0)
  --lattices DIR --lattice_format kaldi-lattice|slf --import_opts 'OPTS'   (stage 1)
  --teacher M --teacher_adapt true|false --teacher_text FILE --heldout_text FILE --pll_opts 'OPTS'   (stages 2, 3)
  --student_init M --student_layers N --student_score_opts 'OPTS'   (stages 4-6)
  --clm_text FILE --systems 'clm pll md mwer mwed' --rescore_opts 'OPTS'   (stage 6)
  --conf_dir DIR --mlm_config F --clm_config F --md_config F --mwer_config F --mwed_config F
  --results FILE --export_lattices true|false --export_opts 'OPTS'   (stage 7)"
. "$root/utils/parse_options.sh"
[ $# -eq 0 ] || die "unexpected argument(s): $* (options are --name value)"

# ---- resolved settings and checks ----
mlm_config=${mlm_config:-$conf_dir/train_mlm.yaml}
clm_config=${clm_config:-$conf_dir/train_clm.yaml}
md_config=${md_config:-$conf_dir/md.yaml}
mwer_config=${mwer_config:-$conf_dir/mwer.yaml}
mwed_config=${mwed_config:-$conf_dir/mwed.yaml}
clm_text=${clm_text:-$teacher_text}
read -r -a evals <<< "$eval_sets"
read -r -a system_list <<< "$systems"
read -r -a pll_args <<< "$pll_opts"
read -r -a student_score_args <<< "$student_score_opts"
read -r -a rescore_args <<< "$rescore_opts"
read -r -a import_args <<< "$import_opts"
read -r -a export_args <<< "$export_opts"
read -r -a data_args <<< "$data_opts"
dev_text_opt=()
[ -z "$heldout_text" ] || dev_text_opt=(--dev_text "$heldout_text")

for v in stage stop_stage nj ngpu student_layers; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "--$v must be a non-negative integer, got '${!v}'"
done
[ "$nj" -ge 1 ] || die "--nj must be at least 1"
case $lattice_format in kaldi-lattice | slf) ;; *) die "--lattice_format must be kaldi-lattice or slf" ;; esac
for s in "${system_list[@]}"; do
  case $s in clm | pll | md | mwer | mwed) ;; *) die "--systems: unknown system '$s' (clm pll md mwer mwed)" ;; esac
done
has_system() { [[ " $systems " == *" $1 "* ]]; }
in_range() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
need_file() { [ -f "$1" ] || die "$2 $1 not found"; }

if [ "$ngpu" -gt 0 ]; then
  device=cuda
  gpu_opt=(--gpu "$ngpu")
  job_gpu=(--gpu 1)
else
  device=cpu
  gpu_opt=()
  job_gpu=()
fi
if [ "$ngpu" -gt 1 ]; then
  trainer=(torchrun --nproc_per_node "$ngpu" -m)
else
  trainer=("$python" -m)
fi
# $cmd may carry options ("slurm.pl --mem 4G"): split into words on purpose.
read -r -a cmd_words <<< "$cmd"

students=()
for s in md mwer mwed; do has_system "$s" && students+=("$s"); done
disc=()
for s in mwer mwed; do has_system "$s" && disc+=("$s"); done
all_sets=("$train_set" "$dev_set" "${evals[@]}")
score_sets=("$dev_set" "${evals[@]}")
if [ "$teacher_adapt" = true ]; then teacher_model=$expdir/teacher_adapt/model; else teacher_model=$teacher; fi
student_src=${student_init:-$teacher_model}
if [ "$student_layers" -gt 0 ]; then student_model=$expdir/student_init; else student_model=$student_src; fi

# The configs of the stages in range are checked before anything runs (also in a dry run); texts may
# come from stage 0, so only their presence as options is checked.
if in_range 2 && [ "$teacher_adapt" = true ]; then
  need_file "$mlm_config" "--mlm_config"
  [ -n "$teacher_text" ] || die "--teacher_adapt true needs --teacher_text"
fi
if in_range 4 && [ ${#students[@]} -gt 0 ]; then need_file "$md_config" "--md_config"; fi
if in_range 5; then
  for s in "${disc[@]}"; do
    c=${s}_config
    need_file "${!c}" "--${s}_config"
  done
fi
if in_range 6 && has_system clm; then
  need_file "$clm_config" "--clm_config"
  [ -n "$clm_text" ] || die "system clm needs --clm_text (or --teacher_text)"
fi

# execute ARGS...: run a command, or print it with --dry_run true.
execute() {
  if [ "$dry_run" = true ]; then show "$@"; else "$@"; fi
}

if [ "$dry_run" = false ]; then
  mkdir -p "$expdir"
  {
    echo "#!/usr/bin/env bash"
    echo "# $(date '+%Y-%m-%d %H:%M:%S'): the command line of the last run of the pipeline"
    echo "cd $(show "$PWD") && $(show "$root/run.sh" "${orig_args[@]}")"
  } > "$expdir/run.sh.replay"
fi

if in_range 0; then
  [ -f local/data.sh ] || die "local/data.sh not found in $PWD (run from a recipe directory)"
  log "Stage 0: data preparation: local/data.sh -> $datadir"
  execute bash local/data.sh "${data_args[@]}"
fi

if in_range 1; then
  if [ -z "$lattices" ]; then
    log "Stage 1: lattices -> n-best: skipped (no --lattices)"
  else
    for s in "${all_sets[@]}"; do
      log "Stage 1: lattices -> n-best: $lattices/$s -> $datadir/$s"
      text_opt=()
      [ ! -f "$datadir/$s/text" ] || text_opt=(--text "$datadir/$s/text")
      execute "$python" -m rescore.bin.import_nbest --format "$lattice_format" --lang "$lang" "${text_opt[@]}" \
        "${import_args[@]}" "$lattices/$s" "$datadir/$s"
    done
  fi
fi

if in_range 2; then
  if [ "$teacher_adapt" = true ]; then
    log "Stage 2: teacher adaptation: $teacher_text -> $expdir/teacher_adapt (log $expdir/log/train_mlm.log)"
    execute "${cmd_words[@]}" "${job_gpu[@]}" "$expdir/log/train_mlm.log" "$python" -m rescore.bin.train_mlm \
      --init "$teacher" --text "$teacher_text" "${dev_text_opt[@]}" --out "$expdir/teacher_adapt" \
      --config "$mlm_config" "device=$device"
  else
    log "Stage 2: teacher adaptation: skipped (--teacher_adapt false)"
  fi
fi

if in_range 3; then
  for s in "${all_sets[@]}"; do
    log "Stage 3: teacher PLL: $datadir/$s -> $expdir/teacher/$s"
    execute "$root/utils/score_parallel.sh" --cmd "$cmd" --nj "$nj" "${job_gpu[@]}" "$datadir/$s" \
      "$expdir/teacher/$s" pll -- rescore.bin.score_pll --model "$teacher_model" --device "$device" "${pll_args[@]}"
  done
fi

if in_range 4 && [ ${#students[@]} -gt 0 ]; then
  if [ "$student_layers" -gt 0 ]; then
    log "Stage 4: student init: first $student_layers layers of $student_src -> $student_model"
    execute "$python" -m rescore.bin.truncate_encoder --num_layers "$student_layers" "$student_src" "$student_model"
  fi
  log "Stage 4: MD student: $datadir/$train_set -> $expdir/student_md (log $expdir/log/train_student_md.log)"
  execute "${cmd_words[@]}" "${gpu_opt[@]}" "$expdir/log/train_student_md.log" "${trainer[@]}" \
    rescore.bin.train_student --config "$md_config" --init "$student_model" \
    --train_set "$datadir/$train_set" --train_scores "$expdir/teacher/$train_set" \
    --dev_set "$datadir/$dev_set" --dev_scores "$expdir/teacher/$dev_set" --out "$expdir/student_md" \
    "device=$device"
fi

if in_range 5; then
  [ ${#disc[@]} -gt 0 ] || log "Stage 5: discriminative training: skipped (neither mwer nor mwed in --systems)"
  for s in "${disc[@]}"; do
    c=${s}_config
    log "Stage 5: ${s^^} student: $datadir/$train_set -> $expdir/student_$s (log $expdir/log/train_student_$s.log)"
    execute "${cmd_words[@]}" "${gpu_opt[@]}" "$expdir/log/train_student_$s.log" "${trainer[@]}" \
      rescore.bin.train_student --config "${!c}" --init "$expdir/student_md/model" \
      --train_set "$datadir/$train_set" --train_scores "$expdir/teacher/$train_set" \
      --dev_set "$datadir/$dev_set" --dev_scores "$expdir/teacher/$dev_set" --out "$expdir/student_$s" \
      "device=$device"
  done
fi

if in_range 6; then
  eval_opts=()
  for s in "${evals[@]}"; do eval_opts+=(--eval "$datadir/$s"); done
  for sys in "${system_list[@]}"; do
    case $sys in
      clm)
        log "Stage 6: baseline LM: $clm_text -> $expdir/clm (log $expdir/log/train_clm.log)"
        execute "${cmd_words[@]}" "${job_gpu[@]}" "$expdir/log/train_clm.log" "$python" -m rescore.bin.train_clm \
          --text "$clm_text" "${dev_text_opt[@]}" --out "$expdir/clm" --config "$clm_config" "device=$device"
        for s in "${score_sets[@]}"; do
          log "Stage 6: baseline LM scores: $datadir/$s -> $expdir/clm/$s"
          execute "$root/utils/score_parallel.sh" --cmd "$cmd" --nj "$nj" "${job_gpu[@]}" "$datadir/$s" \
            "$expdir/clm/$s" clm -- rescore.bin.score_clm --model "$expdir/clm/model" --device "$device"
        done
        stream="clm=$expdir/clm/{set}/clm"
        ;;
      pll)
        stream="pll=$expdir/teacher/{set}/pll"
        ;;
      *)
        for s in "${score_sets[@]}"; do
          log "Stage 6: ${sys^^} student scores: $datadir/$s -> $expdir/student_$sys/$s"
          execute "$root/utils/score_parallel.sh" --cmd "$cmd" --nj "$nj" "${job_gpu[@]}" "$datadir/$s" \
            "$expdir/student_$sys/$s" student -- rescore.bin.score_student --model "$expdir/student_$sys/model" \
            --device "$device" "${student_score_args[@]}"
        done
        stream="$sys=$expdir/student_$sys/{set}/student"
        ;;
    esac
    log "Stage 6: rescore $sys: ${score_sets[*]/#/$datadir/} -> $expdir/rescore/$sys"
    execute "$python" -m rescore.bin.rescore --dev "$datadir/$dev_set" "${eval_opts[@]}" --stream "$stream" \
      --out "$expdir/rescore/$sys" "${rescore_args[@]}"
  done
fi

if in_range 7; then
  sys_opts=()
  for sys in "${system_list[@]}"; do sys_opts+=(--system "$sys=$expdir/rescore/$sys"); done
  set_opts=()
  table_sets=("${evals[@]}")
  [ ${#table_sets[@]} -gt 0 ] || table_sets=("$dev_set")
  for s in "${table_sets[@]}"; do set_opts+=(--set "$s"); done
  log "Stage 7: results: $expdir/rescore -> $results"
  execute "$python" -m rescore.bin.gather_results "${sys_opts[@]}" "${set_opts[@]}" --json "$expdir/results.json" \
    "$results"
  if [ "$export_lattices" = true ]; then
    for sys in "${system_list[@]}"; do
      for s in "${evals[@]}"; do
        log "Stage 7: Kaldi lattices: $expdir/rescore/$sys/$s -> $expdir/rescore/$sys/decode_$s"
        execute "$python" -m rescore.bin.export_nbest --format kaldi-lattice "${export_args[@]}" \
          "$expdir/rescore/$sys/$s" "$expdir/rescore/$sys/decode_$s"
      done
    done
  fi
fi
log "run.sh: stages $stage..$stop_stage done$([ "$dry_run" = false ] || echo ' (dry run: nothing was run)')"
