# bash completion for butter(1)
_butter() {
    local cur prev words cword
    _init_completion 2>/dev/null || {
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    }
    local cmd=${words[1]}
    if [[ $cword -eq 1 ]]; then
        COMPREPLY=($(compgen -W "run learn check show profiles syscalls doctor apply diff pool oci --version --help" -- "$cur"))
        return
    fi
    # After "--" the command and its arguments: complete commands, then files.
    local i
    for ((i = 2; i < cword; i++)); do
        if [[ ${words[i]} == "--" ]]; then
            if [[ $i -eq $((cword - 1)) ]]; then
                COMPREPLY=($(compgen -c -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi
            return
        fi
    done
    case $prev in
        -p|--profile)
            COMPREPLY=($(compgen -W "$(butter profiles 2>/dev/null | awk '{print $1}')" -- "$cur")
                       $(compgen -f -X '!*.toml' -- "$cur"))
            return ;;
        --bind|--ro-bind|--report|--changes|-o|--output|--merge)
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        --set)
            COMPREPLY=($(compgen -W "$(butter show --keys=markdown 2>/dev/null | sed 's/^| `\([^`]*\)`.*/\1=/')" -- "$cur"))
            compopt -o nospace 2>/dev/null
            return ;;
        --timeout|--events)
            return ;;
    esac
    case $cmd in
        run) COMPREPLY=($(compgen -W "-p --profile --set --bind --ro-bind --timeout --report --events --changes --quiet --verbose --" -- "$cur")) ;;
        learn) COMPREPLY=($(compgen -W "-p --profile --set -o --output --merge --diff --offline --timeout --quiet --verbose --" -- "$cur")) ;;
        apply) COMPREPLY=($(compgen -W "--dry-run" -- "$cur") $(compgen -f -- "$cur")) ;;
        diff) COMPREPLY=($(compgen -f -- "$cur")) ;;
        show) COMPREPLY=($(compgen -W "-p --profile --set --keys" -- "$cur")) ;;
        check) COMPREPLY=($(compgen -W "$(butter profiles 2>/dev/null | awk '{print $1}')" -- "$cur") $(compgen -f -- "$cur")) ;;
        syscalls) COMPREPLY=($(compgen -W "$(butter syscalls 2>/dev/null | awk '{print $1}')" -- "$cur")) ;;
    esac
}
complete -F _butter butter
