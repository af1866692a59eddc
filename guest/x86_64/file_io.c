/* File I/O in the working directory: create, write, seek, read back, stat, rename, unlink, opendir. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    umask(022);
    FILE *f = fopen("notes.txt", "w");
    if (!f) { perror("fopen"); return 1; }
    for (int i = 0; i < 100; i++) fprintf(f, "line %d of the notes\n", i);
    fclose(f);
    int fd = open("notes.txt", O_RDONLY);
    char buf[64] = {0};
    lseek(fd, 40, SEEK_SET);
    ssize_t got = read(fd, buf, 30);
    printf("read %zd bytes at 40: [%.*s]\n", got, (int)got, buf);
    struct stat st;
    fstat(fd, &st);
    printf("size %lld mode %o regular %d\n", (long long)st.st_size, st.st_mode & 0777, S_ISREG(st.st_mode));
    close(fd);
    if (stat("notes.txt", &st) == 0) printf("stat size %lld nlink %lu\n", (long long)st.st_size,
                                            (unsigned long)st.st_nlink);
    rename("notes.txt", "kept.txt");
    printf("old name exists: %d\n", access("notes.txt", F_OK) == 0);
    f = fopen("scratch.bin", "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    unlink("scratch.bin");
    mkdir("subdir", 0755);
    f = fopen("subdir/inner.txt", "w");
    fputs("inside\n", f);
    fclose(f);
    DIR *d = opendir("subdir");
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)) != NULL) if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) entries++;
    closedir(d);
    printf("subdir entries %d\n", entries);
    char cwd[4096];
    printf("cwd ends with the test dir: %d\n", getcwd(cwd, sizeof cwd) != NULL);
    return 0;
}
