/* etcd-gitops completion: shell completion scripts, generated from the command and option
 * tables so they never fall out of step with the commands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The words a command takes where it takes no option (what `get` shows, `audit verify`). */
static const char *const positional[][2] = {
        {"get", "clusters members backups cluster member backup"},
        {"audit", "verify"},
        {"completion", "bash zsh fish"},
};

static const char *words_of(const struct eg_command *c) {
        for (size_t i = 0; i < EG_ELEMENTSOF(positional); i++)
                if (strcmp(positional[i][0], c->name) == 0)
                        return positional[i][1];
        return NULL;
}

/* An option's values when its metavar lists them ("table|json"); NULL otherwise. */
static bool lists_values(const struct eg_option *o) {
        if (!o->arg || !strchr(o->arg, '|'))
                return false;
        for (const char *p = o->arg; *p; p++)
                if (!(*p == '|' || *p == '-' || (*p >= 'a' && *p <= 'z')))
                        return false;
        return true;
}

static bool takes_path(const struct eg_option *o) {
        return o->arg && (strstr(o->arg, "FILE") || strstr(o->arg, "DIR") || strcmp(o->arg, "SRC") == 0);
}

typedef void (*option_fn)(const struct eg_command *c, const struct eg_option *o, void *userdata);

static void each_option(const struct eg_command *c, option_fn fn, void *userdata) {
        for (const struct eg_option *o = c->options; o && o->name; o++)
                fn(c, o, userdata);
        for (const struct eg_option *o = eg_common_options; c->uses_common && o->name; o++)
                fn(c, o, userdata);
}

static void bash_word(const struct eg_command *c, const struct eg_option *o, void *userdata) {
        (void)c;
        (void)userdata;
        printf(" --%s", o->name);
        if (o->short_name)
                printf(" -%c", o->short_name);
}

static void bash_value(const struct eg_command *c, const struct eg_option *o, void *userdata) {
        (void)c;
        (void)userdata;
        if (!lists_values(o) && !takes_path(o))
                return;
        printf("        --%s", o->name);
        if (o->short_name)
                printf("|-%c", o->short_name);
        printf(")\n");
        if (takes_path(o))
                printf("                COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n");
        else {
                printf("                COMPREPLY=($(compgen -W \"");
                for (const char *p = o->arg; *p; p++)
                        putchar(*p == '|' ? ' ' : *p);
                printf("\" -- \"$cur\")); return ;;\n");
        }
}

static void print_bash(void) {
        printf("# etcd-gitops completion for bash: eval \"$(etcd-gitops completion bash)\"\n"
               "_etcd_gitops() {\n"
               "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} words=\n"
               "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
               "        COMPREPLY=($(compgen -W \"");
        for (size_t i = 0; i < eg_n_commands; i++)
                printf("%s%s", i ? " " : "", eg_commands[i].name);
        printf("\" -- \"$cur\"))\n        return\n    fi\n    case \"${COMP_WORDS[1]}\" in\n");
        for (size_t i = 0; i < eg_n_commands; i++) {
                const struct eg_command *c = &eg_commands[i];
                const char *w = words_of(c);
                printf("    %s)\n        case \"$prev\" in\n", c->name);
                each_option(c, bash_value, NULL);
                printf("        esac\n        words=\"--help");
                each_option(c, bash_word, NULL);
                printf("%s%s\" ;;\n", w ? " " : "", w ? w : "");
        }
        printf("    esac\n    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\n"
               "complete -o default -F _etcd_gitops etcd-gitops\n");
}

/* zsh runs the bash function through its bashcompinit layer. */
static void print_zsh(void) {
        printf("#compdef etcd-gitops\n# etcd-gitops completion for zsh: eval \"$(etcd-gitops completion zsh)\"\n"
               "autoload -U +X bashcompinit && bashcompinit\n");
        print_bash();
}

/* The text between single quotes for fish. */
static void fish_quoted(const char *s) {
        for (; *s; s++)
                if (*s == '\'' || *s == '\\')
                        printf("\\%c", *s);
                else
                        putchar(*s);
}

static void fish_option(const struct eg_command *c, const struct eg_option *o, void *userdata) {
        (void)userdata;
        printf("complete -c etcd-gitops -n '__fish_seen_subcommand_from %s' -l %s", c->name, o->name);
        if (o->short_name)
                printf(" -s %c", o->short_name);
        if (lists_values(o)) {
                printf(" -x -a '");
                for (const char *p = o->arg; *p; p++)
                        putchar(*p == '|' ? ' ' : *p);
                printf("'");
        } else if (o->arg)
                printf(" %s", takes_path(o) ? "-r -F" : "-x");
        printf(" -d '");
        fish_quoted(o->help);
        printf("'\n");
}

static void print_fish(void) {
        printf("# etcd-gitops completion for fish: etcd-gitops completion fish | source\n"
               "complete -c etcd-gitops -f\n");
        for (size_t i = 0; i < eg_n_commands; i++) {
                const struct eg_command *c = &eg_commands[i];
                const char *w = words_of(c);
                printf("complete -c etcd-gitops -n '__fish_use_subcommand' -a %s -d '", c->name);
                fish_quoted(c->summary);
                printf("'\n");
                if (w)
                        printf("complete -c etcd-gitops -n '__fish_seen_subcommand_from %s' -a '%s'\n", c->name, w);
                each_option(c, fish_option, NULL);
        }
}

int cmd_completion(const struct eg_command *cmd, int argc, char **argv) {
        char **args;
        size_t n;
        int r = eg_cli_parse(cmd, argc, argv, NULL, NULL, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        const char *shell = n == 1 ? args[0] : NULL;
        free(args);
        if (shell && strcmp(shell, "bash") == 0)
                print_bash();
        else if (shell && strcmp(shell, "zsh") == 0)
                print_zsh();
        else if (shell && strcmp(shell, "fish") == 0)
                print_fish();
        else {
                fprintf(stderr, "etcd-gitops completion: name one shell: bash, zsh or fish\nusage: etcd-gitops %s\n",
                        cmd->usage);
                return EG_EXIT_ERROR;
        }
        return EG_EXIT_OK;
}
