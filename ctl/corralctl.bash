# bash completion for corralctl, the control client of corrald (docs/corralctl.md).
#
#   install -m644 ctl/corralctl.bash /usr/share/bash-completion/completions/corralctl
#
# or `source` it from ~/.bashrc. It completes the global options, command
# names, each command's options, the daemon's targets (JOB, JOB:INDEX, JOB:*, all)
# and file names after --file, -o, -c and -s and for import's FILE. Commands and their options are read
# from `corralctl help`, so they follow the installed corralctl; targets come
# from `corralctl [-s S | -c C] --json status`, parsed with sed (no jq).

# The command names, one per line: the command list of `corralctl help`.
_corralctl_commands() {
  "$1" help 2>/dev/null | sed -n '/^commands:$/,/^$/s/^  \([a-z][a-z0-9-]*\).*/\1/p'
}

# What command $2 takes: its usage line without "usage: corralctl $2".
_corralctl_synopsis() {
  local usage
  usage=$("$1" help "$2" 2>/dev/null) || return 1
  usage=${usage%%$'\n'*}
  [[ $usage == "usage: corralctl $2"* ]] || return 1
  printf '%s\n' "${usage#"usage: corralctl $2"}"
}

# Reads synopsis $1 ("JOB [--file F | -] [--wait]", "JOB (ID... | --submit S)")
# into _corralctl_options (every option), _corralctl_value_options (the
# options followed by a value inside their [...] or (...)) and
# _corralctl_operands (operand kinds in order, with "..." when repeated).
_corralctl_parse_synopsis() {
  _corralctl_options=() _corralctl_value_options=() _corralctl_operands=()
  local -a tokens
  read -ra tokens <<<"$1"
  local token text depth=0 last="" opens closes repeated
  for token in "${tokens[@]}"; do
    text=$token opens=0 closes=0 repeated=""
    while [[ $text == "["* || $text == "("* ]]; do text=${text:1} opens=$((opens + 1)); done
    while :; do
      if [[ $text == *"]" || $text == *")" ]]; then
        text=${text%?} closes=$((closes + 1))
      elif [[ $text == *"..." ]]; then
        text=${text%"..."} repeated="..."
      else
        break
      fi
    done
    depth=$((depth + opens))
    if [[ $text == -?* ]]; then
      _corralctl_options+=("$text")
      if ((depth > 0)); then last=$text; else last=""; fi
    elif [[ -n $text && $text != "|" && $text != "-" ]]; then
      if [[ -n $last ]]; then
        _corralctl_value_options+=("$last")
      else
        _corralctl_operands+=("$text$repeated")
      fi
      last=""
    else
      last=""
    fi
    depth=$((depth - closes))
    ((depth < 0)) && depth=0
    ((closes > 0)) && last=""
  done
  return 0
}

# The values of KEY ($2: name or job) in the pretty-printed `--json status`
# list $1, one per line: the keys of each worker object are at 4 spaces.
_corralctl_field() {
  sed -n "s/^    \"$2\": \"\\([^\"]*\\)\",\\{0,1\\}\$/\\1/p" <<<"$1" | sort -u
}

# The words an operand of kind $1 can be; $2... is the corralctl command with
# the line's -s or -c. Targets need the daemon: none when it does not answer.
_corralctl_operand_words() {
  local kind=$1
  shift
  case $kind in
    COMMAND) _corralctl_commands "$1" ;;
    supervisord) echo supervisord ;;  # import's one source
    TARGET | JOB | JOB:INDEX)
      local status workers
      status=$("$@" --json status 2>/dev/null)
      workers=$(_corralctl_field "$status" name)
      [[ -n $workers ]] || return 0
      [[ $kind != JOB ]] && printf '%s\n' "$workers"
      [[ $kind != JOB:INDEX ]] && _corralctl_field "$status" job
      # supervisorctl's GROUP:*, which corralctl takes as JOB.
      [[ $kind == TARGET ]] && _corralctl_field "$status" job | sed 's/$/:*/'
      [[ $kind == TARGET ]] && echo all
      ;;
  esac
  return 0
}

# Sets COMPREPLY to the words of $1 (one per line) that start with $2.
# bash replaces only what follows the last ':' of the word when ':' breaks
# words (COMP_WORDBREAKS), so that part of a JOB:INDEX is taken off.
_corralctl_reply() {
  local words=$1 cur=$2
  mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
  if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
    local prefix=${cur%"${cur##*:}"} i
    for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=${COMPREPLY[i]#"$prefix"}; done
  fi
}

_corralctl_files() {
  compopt -o filenames 2>/dev/null
  mapfile -t COMPREPLY < <(compgen -f -- "$1")
}

_corralctl() {
  COMPREPLY=()
  # The words before the cursor, split at blanks, and the one being typed.
  local line=${COMP_LINE:0:COMP_POINT} cur=""
  local -a words
  read -ra words <<<"$line"
  if [[ ${#words[@]} -gt 0 && $line != *[[:space:]] ]]; then
    cur=${words[-1]}
    unset 'words[-1]'
  fi
  local prog=${words[0]:-corralctl}
  local -a ctl=("$prog")  # how to ask corralctl: with the line's -s or -c
  local i=1 command=""
  while ((i < ${#words[@]})); do
    case ${words[i]} in
      -s | --socket | -c | --config)
        ((i + 1 < ${#words[@]})) && ctl+=("${words[i]}" "${words[i + 1]}")
        i=$((i + 2))
        ;;
      --socket=* | --config=*) ctl+=("${words[i]}") i=$((i + 1)) ;;
      -*) i=$((i + 1)) ;;
      *)
        command=${words[i]}
        break
        ;;
    esac
  done
  local prev=""
  ((${#words[@]} > 1)) && prev=${words[-1]}

  if [[ -z $command ]]; then
    case $prev in
      -s | --socket | -c | --config) _corralctl_files "$cur" ;;
      *)
        if [[ $cur == -* ]]; then
          _corralctl_reply "-s --socket -c --config --json -h --help" "$cur"
        else
          _corralctl_reply "$(_corralctl_commands "$prog")" "$cur"
        fi
        ;;
    esac
    return 0
  fi

  local synopsis
  synopsis=$(_corralctl_synopsis "$prog" "$command") || return 0
  _corralctl_parse_synopsis "$synopsis"
  # Count the operands before the cursor; stop if it is at an option's value.
  local operands=0 options_done="" arg j
  for ((j = i + 1; j < ${#words[@]}; j++)); do
    arg=${words[j]}
    if [[ -n $options_done || $arg != -?* ]]; then
      operands=$((operands + 1))
    elif [[ $arg == -- ]]; then
      options_done=1
    elif [[ " ${_corralctl_value_options[*]} " == *" $arg "* ]]; then
      if ((j + 1 == ${#words[@]})); then
        [[ $arg == --file || $arg == -o || $arg == --output ]] && _corralctl_files "$cur"
        return 0
      fi
      j=$((j + 1))
    fi
  done
  if [[ -z $options_done && $cur == -* ]]; then
    _corralctl_reply "${_corralctl_options[*]} --help" "$cur"
    return 0
  fi
  local kind=""
  if ((operands < ${#_corralctl_operands[@]})); then
    kind=${_corralctl_operands[operands]}
  elif ((${#_corralctl_operands[@]} > 0)) && [[ ${_corralctl_operands[-1]} == *... ]]; then
    kind=${_corralctl_operands[-1]}
  fi
  if [[ $kind == FILE ]]; then
    _corralctl_files "$cur"  # import supervisord FILE
  elif [[ -n $kind ]]; then
    _corralctl_reply "$(_corralctl_operand_words "${kind%"..."}" "${ctl[@]}")" "$cur"
  fi
  return 0
}

complete -F _corralctl corralctl
