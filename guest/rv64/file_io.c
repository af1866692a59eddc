/* file_io: files and directories in the current directory through raw syscalls and stdio.
 *
 * Creates a file, writes, seeks, reads back, checks fstat sizes, truncates,
 * appends, renames and unlinks; makes a directory, fills it and lists it
 * with opendir/readdir (sorted, so the listing does not depend on the file
 * system's order). Leaves a known set of files behind for the harness to
 * compare.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(expr)                                                                                      \
    do {                                                                                                 \
        if (!(expr)) {                                                                                   \
            printf("FAILED line %d: %s (errno %d: %s)\n", __LINE__, #expr, errno, strerror(errno));     \
            return 1;                                                                                    \
        }                                                                                                \
    } while (0)

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_directory(const char *path)
{
    char *names[64];
    int count = 0;
    DIR *dir = opendir(path);
    CHECK(dir != NULL);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && count < 64)
        names[count++] = strdup(entry->d_name);
    CHECK(closedir(dir) == 0);
    qsort(names, (size_t)count, sizeof names[0], compare_names);
    printf("listing of %s (%d entries):", path, count);
    for (int i = 0; i < count; i++) {
        struct stat st;
        char full[256];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        CHECK(stat(full, &st) == 0);
        printf(" %s%s", names[i], S_ISDIR(st.st_mode) ? "/" : "");
        free(names[i]);
    }
    printf("\n");
    return 0;
}

int main(void)
{
    umask(022);
    unsigned char block[10000];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (unsigned char)(i * 7 + (i >> 8));

    int fd = open("data.bin", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, block, sizeof block) == (ssize_t)sizeof block);
    CHECK(lseek(fd, 5000, SEEK_SET) == 5000);
    CHECK(write(fd, "HELLO", 5) == 5);
    CHECK(lseek(fd, -10, SEEK_END) == 9990);
    CHECK(write(fd, "END-OF-FILE!", 12) == 12);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    printf("after writes: size=%lld mode=%o regular=%d\n", (long long)st.st_size, st.st_mode & 0777,
           S_ISREG(st.st_mode));
    CHECK(close(fd) == 0);

    fd = open("data.bin", O_RDONLY);
    CHECK(fd >= 0);
    unsigned char back[11000];
    ssize_t got = read(fd, back, sizeof back);
    printf("read back %zd bytes\n", got);
    CHECK(got == 10002);
    unsigned sum = 0;
    for (ssize_t i = 0; i < got; i++)
        sum = sum * 33 + back[i];
    printf("checksum=%08x hello=%.5s tail=%.12s\n", sum, (char *)back + 5000, (char *)back + 9990);
    CHECK(read(fd, back, sizeof back) == 0);
    CHECK(pread(fd, back, 4, 4998) == 4);
    printf("pread at 4998: %02x %02x %02x %02x\n", back[0], back[1], back[2], back[3]);
    CHECK(lseek(fd, 0, SEEK_CUR) == 10002);
    CHECK(write(fd, "x", 1) == -1);
    printf("write to read-only fd: errno=%d (%s)\n", errno, strerror(errno));
    CHECK(close(fd) == 0);

    fd = open("data.bin", O_RDWR);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, 4096) == 0);
    CHECK(fstat(fd, &st) == 0);
    printf("after ftruncate: size=%lld\n", (long long)st.st_size);
    CHECK(close(fd) == 0);

    fd = open("data.bin", O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(write(fd, "appended", 8) == 8);
    CHECK(fstat(fd, &st) == 0);
    printf("after append: size=%lld\n", (long long)st.st_size);
    CHECK(close(fd) == 0);

    FILE *text = fopen("notes.txt", "w");
    CHECK(text != NULL);
    for (int i = 1; i <= 20; i++)
        fprintf(text, "line %d: %d squared is %d\n", i, i, i * i);
    CHECK(fclose(text) == 0);
    text = fopen("notes.txt", "r");
    CHECK(text != NULL);
    char line[128];
    int lines = 0;
    while (fgets(line, sizeof line, text)) {
        lines++;
        if (lines == 7)
            printf("line seven: %s", line);
    }
    CHECK(fseek(text, 0, SEEK_END) == 0);
    printf("notes.txt: %d lines, %ld bytes\n", lines, ftell(text));
    CHECK(fclose(text) == 0);

    CHECK(mkdir("tree", 0755) == 0);
    CHECK(mkdir("tree", 0755) == -1);
    printf("mkdir twice: errno=%d (%s)\n", errno, strerror(errno));
    CHECK(mkdir("tree/sub", 0700) == 0);
    const char *names[] = {"tree/zeta", "tree/alpha", "tree/Mid", "tree/beta.txt", "tree/sub/inner"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        fd = open(names[i], O_CREAT | O_WRONLY | O_EXCL, 0600);
        CHECK(fd >= 0);
        CHECK(write(fd, names[i], strlen(names[i])) == (ssize_t)strlen(names[i]));
        CHECK(close(fd) == 0);
    }
    CHECK(open("tree/alpha", O_CREAT | O_WRONLY | O_EXCL, 0600) == -1);
    printf("O_EXCL on existing file: errno=%d\n", errno);
    if (list_directory("tree") != 0)
        return 1;

    CHECK(rename("data.bin", "tree/moved.bin") == 0);
    CHECK(access("data.bin", F_OK) == -1);
    printf("old name after rename: errno=%d (%s)\n", errno, strerror(errno));
    CHECK(stat("tree/moved.bin", &st) == 0);
    printf("moved.bin size=%lld\n", (long long)st.st_size);
    CHECK(unlink("tree/zeta") == 0);
    CHECK(unlink("tree/zeta") == -1);
    printf("unlink twice: errno=%d\n", errno);
    CHECK(rmdir("tree") == -1);
    printf("rmdir non-empty: errno=%d (%s)\n", errno, strerror(errno));
    CHECK(open("missing/file", O_RDONLY) == -1);
    printf("open missing: errno=%d\n", errno);
    if (list_directory("tree") != 0)
        return 1;
    if (list_directory(".") != 0)
        return 1;
    return 0;
}
