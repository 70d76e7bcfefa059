#!/usr/bin/env python3
"""Builds the second labelled retrieval evaluation set: manual pages.

    python3 scripts/make-manpage-eval.py \
        crates/strata/tests/fixtures/manpage_eval.json.gz
    python3 scripts/make-manpage-eval.py --candidates 400   # (curation aid)

Corpus: section-1 manual pages installed on the machine that built the set
(Debian 12 packages under /usr/share/man: coreutils, git, binutils, LLVM,
OpenSSL, perf, MariaDB, X11 tools, ...; Google Cloud SDK pages left out,
being hundreds of near-identical alpha/beta copies), rendered by `man` at 80
columns and written as Markdown: `# name(1)`, one `## Heading` per section
(NAME, SYNOPSIS, DESCRIPTION, OPTIONS, ...), the body dedented. A page is
cut at a paragraph boundary after MAX_DOC_CHARS characters, so that the
evaluation runs in CI in a few minutes with the local embedder. The
committed fixture is what counts; a machine with other packages renders
other text, which is why the fixture, not this script, is what the test
reads.

Queries: QUESTIONS below, one per page, written by hand from what the page
says the program is for, the way a user who does not know the program's
name would ask ("how do I ..."): never the program's name, and not the
page's own words. `verify()` fails the build if a question names its
program or shares a run of MAX_RUN or more consecutive words with its
answer page (words: lower-cased `\\w+` runs), and shows the largest 5-gram
share.

Split: by document, with a fixed seed, half `dev` (for choosing methods and
parameters) and half `test` (only reported; the CI test holds hybrid search
to at least the better of keyword and dense on it).

Deterministic given the same installed pages: the same file, byte for byte.
"""
import gzip
import json
import os
import random
import re
import subprocess
import sys

MAX_DOC_CHARS = 5000
MIN_DOC_CHARS = 600
MAX_RUN = 6
NGRAM = 5
SPLIT_SEED = 20261204
CANDIDATE_SEED = 14

WORD = re.compile(r"\w+")

# (page, question): page = name of the section-1 manual page.
QUESTIONS = [
    ("bugpoint-14", "Shrink a compiler crash reproducer automatically to the smallest failing input"),
    ("msguniq", "Merge repeated entries in a gettext .po translation file"),
    ("pstree", "Show running processes as a hierarchy of parents and children"),
    ("x86_64-linux-gnu-addr2line", "Turn a crash address from a binary into the source file and line it came from"),
    ("login", "Which program starts a user session after asking for the name and password on a console?"),
    ("pkgconf", "Get the compiler and linker flags needed to build against an installed library"),
    ("git-rev-list", "Print the hashes of commits newest first, e.g. to count commits on a branch"),
    ("memusagestat", "Draw a PNG chart of how much heap memory a program used over time"),
    ("python3-config", "Find the include and link options for compiling a C extension for Python"),
    ("pidwait", "Block until a process with a given name has exited"),
    ("lesskey", "Change the keyboard shortcuts of the terminal pager"),
    ("postgres", "Start the PostgreSQL server process directly with a data directory"),
    ("enc2xs", "Generate a Perl extension for a custom character encoding from a mapping table"),
    ("bzfgrep", "Look for a fixed string inside .bz2 compressed files without unpacking them first"),
    ("systemd-cryptenroll", "Unlock my encrypted disk with a FIDO2 security key or TPM chip"),
    ("dpkg-name", "Rename a .deb file so its name contains package, version and architecture"),
    ("lastb", "See the failed login attempts on this machine"),
    ("hostnamectl", "Change the machine's host name permanently on a systemd system"),
    ("perf-kvm", "Profile a virtual machine guest from the host"),
    ("dpkg-shlibdeps", "Work out which library packages a Debian binary package depends on"),
    ("find", "Locate every file under a folder that was modified in the last day"),
    ("openssl-mac", "Compute an HMAC or CMAC of a file using the OpenSSL command line"),
    ("mknod", "Create a device node file with a major and minor number"),
    ("llvm-extract", "Pull a single function out of an LLVM bitcode file into its own module"),
    ("gpgsplit", "Break an OpenPGP file into its individual packets for debugging"),
    ("basename", "Get just the file name from a full path, dropping the extension"),
    ("fc-list", "Which fonts are installed on my system?"),
    ("infocmp", "Show the differences between two terminal type definitions"),
    ("cmp", "Tell me the first byte where two binary files differ"),
    ("ncursesw6-config", "Compiler flags for linking a program against the wide-character curses library"),
    ("mysqlreport", "A readable summary of a MySQL server's status variables and health"),
    ("ssh-agent", "Keep my SSH private keys unlocked in memory so I don't type the passphrase every time"),
    ("lsirq", "List the interrupts the kernel handles and how often each fired"),
    ("zless", "Page through a gzipped log file on screen"),
    ("mysqlhotcopy", "Quickly back up MyISAM tables of a running database by copying files"),
    ("ypdomainname", "Print the NIS domain name of this host"),
    ("git-column", "Arrange a list of words into several columns, like ls does"),
    ("rgrep", "Search recursively through all files under a folder for lines matching a regular expression"),
    ("dpkg-gensymbols", "Produce the symbols file that tracks which library version introduced each exported function"),
    ("mosquitto_passwd", "Add a user with a hashed password for the MQTT broker"),
    ("openssl-gendsa", "Create a DSA private key from existing parameters"),
    ("systemd-path", "Where are the user's cache and config folders according to systemd?"),
    ("xz", "Compress a file with the LZMA2 algorithm to get a smaller archive than gzip"),
    ("pkcheck", "Ask polkit whether a given process is allowed to perform an action"),
    ("make-first-existing-target", "Run make with the first target out of a list that the makefile actually defines"),
    ("openssl-passphrase-options", "How do I give OpenSSL the password for a key from a file or an environment variable?"),
    ("scalar", "Speed up work in a huge Git monorepo with background maintenance and partial clone"),
    ("gencat", "Compile a message catalog source file for catgets"),
    ("strace", "See which system calls a program makes and the signals it receives"),
    ("md5sum.textutils", "Verify downloaded files against a list of MD5 checksums"),
    ("git-annotate", "Show each line of a file with the commit that last changed it, in the older output format"),
    ("logname", "Print the name I logged in with, even after su"),
    ("size", "How big are the text, data and bss segments of an executable?"),
    ("amqp-declare-queue", "Create a queue on a RabbitMQ server from a shell script"),
    ("llvm-profdata", "Merge raw profile files from instrumented runs for profile guided optimisation"),
    ("unzipsfx", "Make a zip archive that extracts itself when executed"),
    ("sprof", "Read the profiling output of a shared library"),
    ("pg_createcluster", "Set up an additional PostgreSQL instance with its own port on Debian"),
    ("openssl-ts", "Request and verify RFC 3161 trusted timestamps"),
    ("manpath", "Which directories are searched for documentation pages?"),
    ("perf-iostat", "Measure PCIe I/O bandwidth per root port"),
    ("bzexe", "Shrink program binaries on disk so they decompress themselves when run, using bzip2"),
    ("reset", "My terminal shows garbage after printing a binary file; how do I restore it?"),
    ("zstdcat", "Decompress a .zst file to standard output"),
    ("x86_64-linux-gnu-gp-archive", "Bundle the source and object files with a gprofng experiment so it can be analysed elsewhere"),
    ("pg_isready", "Check from a script whether the Postgres server accepts connections yet"),
    ("getent", "Look up a user or host through the configured databases like passwd or hosts"),
    ("git-upload-pack", "The server side program that sends objects when someone fetches from a repository"),
    ("gencnval", "Build the ICU converter alias table"),
    ("xwininfo", "Find the geometry and id of a window by clicking on it"),
    ("tsget", "Send timestamp requests to a TSA server over HTTP"),
    ("llvm-cxxfilt", "Turn mangled C++ symbol names back into readable ones with the LLVM tools"),
    ("gawkbug", "Send a bug report about GNU awk to its maintainers"),
    ("mariadbd-multi", "Start and stop several database server instances with different ports from one config file"),
    ("jar", "Package Java class files into an archive file"),
    ("debconf-show", "Print the answers stored for a package's configuration questions"),
    ("rsync-ssl", "Connect to a file sync daemon through an encrypted TLS tunnel"),
    ("xvinfo", "Which video adaptors does the X server's XVideo extension offer?"),
    ("git-diagnose", "Collect repository statistics and logs into an archive to attach to a bug report"),
    ("git-difftool", "Open the changes in a graphical comparison program such as meld or vimdiff"),
    ("systemd-tty-ask-password-agent", "Answer pending boot-time password prompts from the console"),
    ("pg_rewind", "Resynchronise an old primary after failover so it can follow the new one"),
    ("java", "Run a program packaged as a class or jar file on the JVM"),
    ("sha512sum", "Calculate the SHA-512 hash of a file"),
    ("gzexe", "Turn an executable into a smaller self-uncompressing one using gzip"),
    ("lsattr", "Show whether a file has the immutable or append-only flag set on ext4"),
    ("bzip2", "Compress files with the Burrows-Wheeler algorithm and recover data from a damaged archive"),
    ("msgcat", "Concatenate several .po translation files into one"),
    ("zipgrep", "Grep inside the files of a zip archive without extracting it"),
    ("git-hook", "Trigger a repository's configured hook scripts by hand"),
    ("pg_waldump", "Decode the write-ahead log segments of Postgres into readable records"),
    ("dpkg-vendor", "Which distribution vendor is the current build for, Debian or a derivative?"),
    ("systemd-firstboot.service", "Set the locale, time zone and root password interactively when an image boots the first time"),
    ("lldb-tblgen-14", "Generate C++ code for the LLDB debugger from TableGen description files"),
    ("perf-probe", "Add a dynamic tracepoint on a kernel function or a user space binary"),
    ("infotocap", "Convert a terminfo entry into the older termcap format"),
    ("dpkg-source", "Unpack or build a Debian source package from its .dsc file"),
    ("msgattrib", "Extract only the fuzzy or untranslated entries from a translation catalog"),
    ("lslogins", "Show details about all user accounts, such as last login and password status"),
    ("expiry", "Force a user to change a password that has expired"),
    ("chgrp", "Give a file to a different group"),
    ("pg_restore", "Load a custom-format dump back into a Postgres database"),
    ("git-rm", "Stop tracking a file in version control and delete it from my checkout"),
    ("gio", "Open, copy or trash files through GNOME's virtual file system from a terminal"),
    ("rev", "Reverse the order of the characters on each line of text"),
    ("dpkg-genbuildinfo", "Record the environment a Debian package was built in for reproducible builds"),
    ("helpztags", "Create the tags index for the help documents of a Vim plugin"),
    ("vi", "A modal text editor for programmers with syntax highlighting and many undo levels"),
    ("pkgdata", "Package ICU data files into a shared library or archive"),
    ("git-diff", "See what I changed in my working copy compared to the last commit"),
    ("pg_restorecluster", "Bring back a Postgres cluster from a backup made by the Debian backup wrapper"),
    ("clear", "Wipe the contents of the terminal window"),
    ("taskset", "Pin a process to particular CPU cores"),
    ("mesg", "Stop other users from writing messages to my terminal"),
    ("git-revert", "Undo a commit that was already pushed by creating a new commit"),
    ("which.debianutils", "Find the full path of the executable that runs when I type a program name"),
    ("fc-query", "Print the properties of a given font file"),
    ("mysql_convert_table_format", "Change all tables of a database from MyISAM to InnoDB"),
    ("pod2man", "Turn Perl's plain old documentation into a Unix manual page"),
    ("realpath", "Resolve symlinks and dots to get the canonical absolute path of a file"),
    ("mysql_upgrade", "After installing a newer database server version, update the system tables"),
    ("openssl-s_time", "Benchmark how many TLS connections per second a server handles"),
    ("split", "Cut a large file into chunks of 100 MB each"),
    ("git-fast-import", "Import history from another version control system from a text stream at high speed"),
    ("git", "Introduction to the distributed version control system and its commands"),
    ("perf-stat", "Count CPU cycles, instructions and cache misses while running a command"),
    ("git-blame", "Who wrote this line of code and in which commit?"),
    ("valgrind", "Detect memory leaks and invalid memory accesses in a C program"),
    ("git-range-diff", "Compare two versions of a rebased patch series"),
    ("perf", "Overview of the Linux profiling tool and its subcommands"),
    ("lessfile", "Let the pager show the contents of archives and other non-text files"),
    ("gprof", "Read the gmon.out file to see which functions took the most time"),
    ("lzfgrep", "Search .xz or .lzma compressed files for text"),
    ("x86_64-linux-gnu-gp-collect-app", "Record a performance profile of an application with gprofng"),
    ("jpackage", "Build a native installer like a .deb or .msi for a Java application"),
    ("debconf", "Run a program that asks configuration questions through the Debian front end"),
    ("llvm-cxxmap-14", "Match mangled symbol names between two versions of a program after types were renamed"),
    ("perf-kmem", "Trace kernel slab allocations and page allocator events"),
    ("objcopy", "Convert an ELF executable into a raw binary image for a microcontroller"),
    ("git-mv", "Rename a tracked file in a repository"),
    ("mariadb-admin", "Shut down the database server or reload its privileges from the command line"),
    ("add-apt-repository", "Add a PPA to my software sources"),
    ("tar", "Pack a directory into a compressed archive file and unpack it again"),
    ("rmdir", "Delete a folder that has nothing in it"),
    ("xml2-config", "Get the cflags and libs for compiling against libxml"),
    ("pg_dumpall", "Back up all databases of a Postgres server, including roles, into one SQL file"),
    ("git-rev-parse", "Get the full commit hash that HEAD points to"),
    ("join", "Combine the lines of two sorted files that share a key field, like in SQL"),
    ("systemd-id128", "Generate a random 128-bit identifier or print the boot id"),
    ("jinfo", "Print the system properties and flags of a running Java virtual machine"),
    ("pg_receivewal", "Continuously archive the transaction log from a Postgres server over the replication protocol"),
    ("derb", "Decompile a binary ICU resource bundle back to text"),
    ("zgrep", "Search .gz log files for a pattern"),
    ("perl5.36-x86_64-linux-gnu", "Run a script in the Practical Extraction and Report Language"),
    ("chrt", "Give a process real-time FIFO scheduling priority"),
    ("pydoc3", "Show the documentation of a Python module in the terminal or serve it as a web page"),
    ("dbus-monitor", "Watch the messages sent on the system or session bus"),
    ("sotruss", "See which shared library functions a program calls through the PLT"),
    ("true", "A command that always returns exit status zero"),
    ("pg_backupcluster", "Take a base backup or dump of a whole Postgres cluster on Debian"),
    ("git-subtree", "Include another project in a subdirectory of my repository and split it out again later"),
    ("stty", "Turn off echo or change the erase character of the terminal"),
    ("gpg-wks-server", "Publish OpenPGP keys of a mail domain through the Web Key Directory"),
    ("mosquitto_rr", "Send an MQTT request and wait for the response on a reply topic"),
    ("colrm", "Delete character columns 10 to 20 from every line of a file"),
    ("mysqlimport", "Load CSV or tab separated text files into database tables"),
    ("factor", "Break a number down into its prime divisors"),
    ("ld.bfd", "Link object files into an executable, the classic GNU way"),
    ("openssl-sess_id", "Inspect a saved TLS session file"),
    ("pg_test_fsync", "Which WAL sync method is fastest on my disk for Postgres?"),
    ("mosquitto_ctrl_dynsec", "Create roles and clients in the MQTT broker's dynamic security plugin"),
    ("git-check-ref-format", "Is this a valid name for a branch?"),
    ("gpgtar", "Create an encrypted tarball with GnuPG"),
    ("more", "View a long text file one screenful at a time"),
    ("pygettext3", "Extract translatable strings from Python source into a .pot template"),
    ("tac", "Print a file with its last line first"),
    ("strip", "Remove debug information from a binary to make it smaller"),
    ("time", "How long did a command take and how much memory did it use?"),
    ("git-multi-pack-index", "Write an index covering several pack files of a repository"),
    ("llvm-nm-14", "List the symbols defined in LLVM bitcode or object files"),
    ("qemu-io", "Issue reads and writes against a virtual disk image for testing"),
    ("callgrind_annotate", "Summarise a callgrind profile per function and per source line"),
    ("eqn", "Typeset mathematical formulas in troff documents"),
    ("whereis", "Find where a command's binary, sources and documentation are installed"),
    ("gawk", "The GNU implementation of the pattern scanning language for processing columns of text"),
    ("lessecho", "Expand wildcards and quote file names for the pager"),
    ("write", "Send a message to the terminal of another logged in user"),
    ("systemd-cgls", "Show the tree of control groups and the processes in each"),
    ("pg_renamecluster", "Change the name of an existing Postgres cluster on Debian"),
    ("select-editor", "Choose which text editor is used by default"),
    ("stdbuf", "Make a command's output line buffered when it writes into a pipe"),
    ("sftp", "Transfer files interactively to a server over an encrypted SSH connection"),
    ("viewres", "Browse the Athena widget classes and how they inherit"),
    ("pygmentize", "Syntax highlight a source file into HTML or colored terminal output"),
    ("sync", "Flush buffered data to disk before pulling out a USB stick"),
    ("du", "How much disk space does each folder take?"),
    ("git-merge-base", "Find the commit where two branches diverged"),
    ("perf-data", "Convert a profiler recording file into CTF or JSON"),
    ("openssl-genrsa", "Create a new 4096-bit RSA key with OpenSSL"),
    ("shred", "Securely erase a file by overwriting it many times"),
    ("mariadb-show", "List the databases, tables or columns of a database server"),
    ("b2sum", "Compute a BLAKE2 checksum of a file"),
    ("innotop", "Monitor InnoDB transactions and locks live, like top"),
    ("editres", "Inspect and change the resources of a running X Toolkit program"),
    ("mktemp", "Safely make a uniquely named scratch file in a shell script"),
    ("openssl-asn1parse", "Dump the DER structure of a certificate to see its fields"),
    ("uniq", "Count how many times each repeated line appears in sorted input"),
    ("gettextize", "Prepare a source package to use GNU gettext for translations"),
    ("x86_64-linux-gnu-gold", "A faster linker for ELF files only"),
    ("llvm-exegesis", "Measure the latency and throughput of single machine instructions"),
    ("openssl-dsaparam", "Generate parameters for DSA keys"),
    ("encguess", "Detect whether a text file is UTF-8, Latin-1 or another charset"),
    ("openssl-req", "Create a certificate signing request or a self-signed certificate"),
    ("prove", "Run a Perl test suite and summarise the results"),
    ("dsymutil", "Link the DWARF debug info of a macOS program into a dSYM bundle"),
    ("h2ph", "Translate C header files into Perl include files"),
    ("mysqlaccess", "Check which privileges a user has for a database from a given host"),
    ("openssl-genpkey", "Generate an Ed25519 or EC private key with OpenSSL"),
    ("systemd-stdio-bridge", "Connect standard input and output to a message bus, e.g. over SSH"),
    ("gpg-agent", "The daemon that caches GnuPG passphrases and handles private keys"),
    ("llvm-strip", "Remove symbols from object files using the LLVM toolchain"),
    ("git-shell", "A restricted login shell that only allows pushing and pulling over SSH"),
    ("tee", "Save a command's output to a file and still see it on the screen"),
    ("systemd-umount", "Mount a USB drive temporarily as a transient unit"),
    ("openssl-dsa", "Convert a DSA key between PEM and DER or remove its passphrase"),
    ("git-interpret-trailers", "Add a Signed-off-by line to commit messages automatically"),
    ("mariadb-dumpslow", "Which queries show up most in the slow query log?"),
    ("git-gc", "Compress and clean up my repository to save space"),
    ("git-rerere", "Remember how I resolved a merge conflict and reapply it next time"),
    ("perf-help", "Show the documentation of a subcommand of the Linux profiler"),
    ("perf-timechart", "Produce an SVG chart of what every CPU and process did during a workload"),
    ("git-worktree", "Check out a second branch into another folder without cloning again"),
    ("migrate-pubring-from-classic-gpg", "Convert an old pubring.gpg to the keybox format of GnuPG 2.1"),
    ("pg_resetwal", "Last resort to start a corrupted Postgres cluster by clearing its transaction log"),
    ("git-merge-index", "Run a merge program on every file that still needs merging"),
    ("llvm-objdump-14", "Disassemble object files with the LLVM tools"),
    ("fakeroot-tcp", "Build a package with files owned by root without being root"),
    ("apropos", "Search the short descriptions of all manual pages for a keyword"),
    ("dpkg-query", "List installed Debian packages and their versions"),
    ("od", "Show the bytes of a file as octal or hexadecimal numbers"),
    ("git-web--browse", "The helper that opens documentation or gitweb in a web browser"),
    ("mysqlslap", "Load test a database server with many simulated clients"),
    ("xkill", "Close a frozen graphical window by clicking on it"),
    ("to_erl", "Connect to an Erlang node started in the background by run_erl"),
    ("json_pp", "Pretty print JSON in the terminal with Perl"),
    ("dpkg-parsechangelog", "Get the version from the latest entry of a debian/changelog"),
    ("vacuumdb", "Reclaim space and update planner statistics of a Postgres database from the shell"),
    ("passwd", "Change my account's password"),
    ("git-fsmonitor--daemon", "Watch the working tree for file changes so git status is faster"),
    ("iconv", "Convert a file from Latin-1 to UTF-8"),
    ("git-symbolic-ref", "Make HEAD point to another branch name"),
    ("msgfmt", "Compile a .po file into a binary .mo file"),
    ("openssl-ca", "Sign certificate requests with my own certificate authority"),
    ("pg_checksums", "Turn on page checksums for an offline Postgres cluster"),
    ("git-reset", "Move the current branch back to an earlier commit, discarding changes"),
    ("xfontsel", "Pick an X11 font name interactively"),
    ("aria_read_log", "Apply or print the contents of Aria storage engine log files"),
    ("git-clone", "Copy a remote repository to my computer"),
    ("git-submodule", "Embed another repository at a fixed commit inside my project and update it"),
    ("setsid", "Start a program detached in its own session"),
    ("gpg-zip", "Encrypt a set of files into one archive with the OpenPGP tool (old wrapper)"),
    ("llvm-libtool-darwin-14", "Create static libraries for macOS targets with LLVM"),
    ("ptargrep", "Search the files inside a tarball with a Perl regular expression"),
    ("xev", "Print the keyboard and mouse events an X window receives"),
    ("git-repack", "Combine loose objects into pack files"),
    ("git-name-rev", "Describe a commit relative to the nearest branch or tag name"),
    ("chfn", "Update my full name and office phone in the user database"),
    ("dbus-send", "Call a method on a D-Bus service from a shell script"),
    ("deb-systemd-helper", "How Debian maintainer scripts enable service units even when systemd is not running"),
    ("mkdir", "Create a folder including all its parent folders"),
    ("llvm-stress-14", "Produce random LLVM IR programs to fuzz the compiler"),
    ("msginit", "Start a new translation for a language from a .pot template"),
    ("mysql_install_db", "Create the initial system tables in a fresh database data directory"),
    ("pg_dropcluster", "Remove a Postgres cluster and all its data on Debian"),
    ("basenc", "Convert data to or from base32, base64url or base16 encodings"),
    ("grops", "Output device for groff that produces PostScript"),
    ("wc", "Count the lines in a file"),
    ("strings", "Pull readable text out of a binary file"),
    ("mlir-tblgen-14", "Generate C++ declarations for MLIR dialects from TableGen records"),
    ("perf-c2c", "Find false sharing between CPUs on shared cache lines"),
    ("fc-scan", "Print the font patterns found in a set of font files or folders"),
    ("libgcrypt-config", "Compiler flags for linking a program with the GnuPG crypto library"),
    ("dropdb", "Delete a Postgres database from the shell"),
    ("reindexdb", "Rebuild the indexes of a Postgres database from the command line"),
    ("h2xs", "Start a new Perl XS extension module from a C header"),
    ("bash", "The default interactive shell: startup files, job control, variables and history"),
    ("unlink", "Delete exactly one file with the system call, no options"),
    ("git-receive-pack", "The program on the server that accepts pushed objects and updates refs"),
    ("look", "Print the words of the dictionary that start with a prefix"),
    ("git-write-tree", "Store the current staging area as a tree object"),
    ("xdriinfo", "Which direct rendering driver does my screen use?"),
    ("systemd-machine-id-setup", "Create /etc/machine-id when building a system image"),
    ("msql2mysql", "Port a program written for mSQL to the MySQL C API"),
    ("mysql_secure_installation", "Remove anonymous users and the test database after installing the database server"),
    ("lzless", "View a .xz compressed text file page by page"),
    ("pinky", "A lightweight version of finger showing who is logged in"),
    ("escript", "Run an Erlang program as a script from the shell"),
    ("redis-benchmark", "How many requests per second can my key-value server handle?"),
    ("git-fast-export", "Dump a repository's history as a stream for importing into another tool"),
    ("dpkg-checkbuilddeps", "Are all the packages needed to build this source package installed?"),
    ("dbus-uuidgen", "Generate or read the machine UUID used by the message bus"),
    ("c99", "Compile a program as standard 1999 ISO C"),
    ("pg_amcheck", "Detect corrupted tables and indexes in Postgres"),
    ("xzdiff", "Show the differences between two compressed files"),
    ("openssl-fipsinstall", "Set up the FIPS provider configuration file of OpenSSL 3"),
    ("mariadbd-safe", "Wrapper that starts the database daemon and restarts it after a crash"),
    ("chsh", "Change my default shell to zsh"),
    ("pager", "Scroll backwards and forwards through a file in the terminal and search it"),
    ("groff", "Typeset a troff document into PDF or PostScript"),
    ("renice", "Lower the priority of a running process"),
    ("chown", "Make another user the owner of a file"),
    ("openssl-errstr", "What does this numeric OpenSSL error code mean?"),
    ("wget", "Download a file from a URL, resuming if the connection drops"),
    ("llvm-rtdyld", "Load object files into memory and run them with the MC-JIT linker for testing"),
    ("git-restore", "Throw away my local edits to a file and get back the committed version"),
    ("mariadb-tzinfo-to-sql", "Fill the database's time zone tables from the system zoneinfo files"),
    ("pic", "Draw diagrams in troff documents with a little language"),
    ("x86_64-linux-gnu-ar", "Bundle object files into a static library .a"),
    ("gp-display-html", "Turn a gprofng experiment into browsable web pages"),
    ("openssl-version", "Which OpenSSL release is installed and how was it built?"),
    ("dpkg-buildflags", "Which hardening CFLAGS and LDFLAGS should a Debian package build use?"),
    ("unlz4", "Decompress a .lz4 file"),
    ("git-prune-packed", "Delete loose objects that already exist in pack files"),
    ("wish", "Run a Tcl script with the Tk graphical toolkit"),
    ("amqp-consume", "Read messages from a RabbitMQ queue and hand each to a shell command"),
    ("perf-daemon", "Keep profiling sessions running in the background"),
    ("gitweb", "Browse my repositories in a web browser through a CGI script"),
    ("lzmainfo", "Print the dictionary size and uncompressed size stored in an LZMA header"),
    ("redis-server", "Start the in-memory key-value store with a configuration file"),
    ("cscope", "Browse C source code to find where functions are called or defined"),
    ("locale", "Print my current language and character set settings"),
    ("man", "How do I read the documentation of a command?"),
    ("printenv", "Show the value of an environment variable"),
    ("llvm-objcopy", "Copy and edit sections of object files with the LLVM toolchain"),
    ("openssl-format-options", "What input and output formats like PEM and DER do OpenSSL commands accept?"),
    ("openssl-prime", "Check a large integer for primality using OpenSSL"),
    ("git-ls-remote", "List the branches and tags of a remote repository without cloning it"),
    ("amqp-delete-queue", "Remove a queue from a RabbitMQ server from the command line"),
    ("git-check-ignore", "Why is this file ignored by version control? Which pattern matches it?"),
    ("openssl-rehash", "Create hash-named symlinks in a certificate directory"),
    ("perf-list", "Which hardware and software events can I count or sample?"),
    ("bashbug", "Report a problem in the Bourne-Again shell to its developers"),
    ("git-cherry-pick", "Copy a single commit from another branch onto mine"),
    ("libpng16-config", "Get the build flags for the PNG image library"),
    ("printf", "Format numbers with padding and decimals in a shell script"),
    ("vacuumlo", "Delete orphaned large objects from a Postgres database"),
    ("openssl-enc", "Encrypt a file with AES-256 using a password on the command line"),
    ("zipnote", "Edit the comments stored in a zip archive"),
    ("mysql_find_rows", "Extract the SQL statements that match a pattern from an update log"),
    ("getopt", "Parse long and short options in a shell script"),
    ("dumpsexp", "Debug a libgcrypt S-expression by printing it in readable form"),
    ("myisam_ftdump", "Inspect the words stored in a MyISAM full-text index"),
    ("openssl-verification-options", "Options that control certificate chain checks, such as trusted CA file and purpose"),
    ("llvm-addr2line", "Map addresses to source lines using the LLVM symbolizer in binutils style"),
    ("dpkg-buildpackage", "Build the .deb files from an unpacked Debian source tree"),
    ("fc-pattern", "Show what a fontconfig pattern expands to"),
    ("replace", "Substitute strings in files in place with the MariaDB helper"),
    ("llvm-mca", "Estimate how many cycles a loop of assembly takes on a given CPU"),
    ("rsync", "Mirror a directory to another machine, transferring only the differences"),
    ("dh_installxmlcatalogs", "Register XML catalog files in a Debian package with debhelper"),
    ("mariadb", "Connect to the database server and type SQL queries interactively"),
    ("chattr", "Make a file immutable so even root cannot delete it"),
    ("llvm-readelf-14", "Print ELF headers and sections with the LLVM tools, GNU style"),
    ("dpkg-mergechangelogs", "Merge two branches' debian/changelog against their common ancestor"),
    ("ctags", "Create an index of function definitions so my editor can jump to them"),
    ("git-request-pull", "Write an email asking the maintainer to pull my branch"),
    ("openssl-rsautl", "Sign or encrypt small data directly with an RSA key (deprecated)"),
    ("genbrk", "Compile ICU rules for where words and lines may break"),
    ("bzless", "Read a .bz2 compressed text file page by page"),
    ("hd", "View a binary file as hex with ASCII on the side"),
    ("snmpc", "Compile SNMP MIB definitions with the Erlang tools"),
    ("head", "Show only the first 10 lines of a file"),
    ("jdeprscan", "Find uses of deprecated Java APIs in a jar"),
    ("tload", "Draw a text graph of the system load average in the terminal"),
]


def words(text):
    return WORD.findall(text.lower())


def ngrams(ws, n):
    n = min(n, len(ws))
    return {tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)} if n else set()


def overlap(query_words, doc_words):
    run, n = 0, 1
    while n <= len(query_words) and ngrams(query_words, n) & ngrams(doc_words, n):
        run, n = n, n + 1
    grams = ngrams(query_words, NGRAM)
    doc = ngrams(doc_words, min(NGRAM, len(query_words)))
    share = len(grams & doc) / len(grams) if grams else 0.0
    return run, share


def render(page):
    """The page as Markdown, or None if man cannot render it."""
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    try:
        raw = subprocess.run(
            ["man", "--nh", "--nj", "-P", "cat", "1", page],
            capture_output=True, env=env, timeout=30, check=True,
        ).stdout
        plain = subprocess.run(["col", "-bx"], input=raw, capture_output=True, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    lines = plain.decode("utf-8", "replace").splitlines()
    # Drop the running header and footer (NAME(1) ... NAME(1)).
    if lines and re.match(r"^\S+\(\d\w*\)\s", lines[0]):
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines.pop()
    if lines and re.search(r"\S+\(\d\w*\)\s*$", lines[-1]):
        lines = lines[:-1]
    out = [f"# {page}(1)", ""]
    for line in lines:
        if line and not line[0].isspace():
            out += ["", f"## {line.strip()}", ""]
        else:
            out.append(line[7:] if line.startswith(" " * 7) else line.strip())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"
    if len(text) > MAX_DOC_CHARS:
        cut = text.rfind("\n\n", 0, MAX_DOC_CHARS)
        text = text[: cut if cut > MAX_DOC_CHARS // 2 else MAX_DOC_CHARS].rstrip() + "\n"
    return text


def description(text):
    m = re.search(r"## NAME\s*\n\s*\n?(.*?)(\n\n|\n## )", text, re.S)
    return " ".join(m.group(1).split()) if m else ""


def candidates(n):
    listing = subprocess.run(["apropos", "-l", "-s", "1", "."], capture_output=True, text=True).stdout
    names = sorted({line.split(" (")[0] for line in listing.splitlines() if " (" in line})
    names = [x for x in names if not x.startswith("gcloud")]
    random.Random(CANDIDATE_SEED).shuffle(names)
    seen = set()
    shown = 0
    for page in names:
        text = render(page)
        if not text or len(text) < MIN_DOC_CHARS:
            continue
        d = description(text)
        if not d or d.lower() in seen:
            continue
        seen.add(d.lower())
        print(f"{page}\t{len(text)}\t{d}")
        shown += 1
        if shown == n:
            break


def verify(documents, questions):
    text = {d["key"]: words(d["text"]) for d in documents}
    worst_run, worst_share = 0, 0.0
    problems = []
    for q in questions:
        page = q["document"][: -len(".1.md")]
        qw = words(q["query"])
        # The program's name as words (version numbers left out), all of
        # them in the question: `tar` in "a .tar file", `perf` and `data`.
        name_words = [w for w in words(page) if not w.isdigit()]
        if name_words and all(w in qw for w in name_words):
            problems.append(f"question names its program {page}: {q['query']!r}")
        run, share = overlap(qw, text[q["document"]])
        if run >= MAX_RUN:
            problems.append(f"question shares {run} consecutive words with {q['document']}: {q['query']!r}")
        worst_run, worst_share = max(worst_run, run), max(worst_share, share)
    if problems:
        raise SystemExit("\n".join(problems))
    return worst_run, worst_share


def check_the_check():
    doc = [{"key": "cut.1.md", "text": "# cut(1)\n\nremove sections from each line of files\n"}]

    def refuses(q):
        try:
            verify(doc, [{"query": q, "document": "cut.1.md"}])
        except SystemExit:
            return True
        return False

    assert refuses("How do I use cut to get a column?")
    assert refuses("I want to remove sections from each line of files")
    assert not refuses("Print only the third field of every line of a CSV file")


def main():
    if sys.argv[1] == "--candidates":
        candidates(int(sys.argv[2]))
        return
    out = sys.argv[1]
    check_the_check()
    pages = [p for p, _ in QUESTIONS]
    if len(set(pages)) != len(pages):
        raise SystemExit("a page has two questions")
    documents = []
    for page in sorted(pages):
        text = render(page)
        if not text:
            raise SystemExit(f"man cannot render {page}")
        documents.append({"key": f"{page}.1.md", "text": text})
    order = sorted(pages)
    random.Random(SPLIT_SEED).shuffle(order)
    split = {p: ("dev", "test")[i % 2] for i, p in enumerate(order)}
    questions = [{"query": q, "document": f"{p}.1.md", "split": split[p]} for p, q in QUESTIONS]
    run, share = verify(documents, questions)
    result = {
        "about": "Labelled retrieval evaluation on manual pages; made by scripts/make-manpage-eval.py",
        "rule": {"max_shared_run_words": MAX_RUN - 1, "names_its_program": False},
        "split_seed": SPLIT_SEED,
        "documents": documents,
        "questions": questions,
    }
    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(json.dumps(result, ensure_ascii=False, indent=0).encode("utf-8"))
    chars = sum(len(d["text"]) for d in documents)
    print(
        f"{len(documents)} documents ({chars} chars), {len(questions)} questions "
        f"({sum(q['split'] == 'dev' for q in questions)} dev) -> {out}; longest shared run "
        f"{run} words, largest 5-gram share {share:.0%}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
