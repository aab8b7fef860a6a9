/* Function names from ELF symbol tables (wk_symbol.h).
 *
 * The file is untrusted input as far as this code goes: every offset and
 * size read from it is checked against the mapped length before use. */
#define _GNU_SOURCE
#include "wk_symbol.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if UINTPTR_MAX == UINT64_MAX
#define WK_ELF_CLASS ELFCLASS64
#else
#define WK_ELF_CLASS ELFCLASS32
#endif

/* The loaded object that holds an address: where its file is and how far
 * it was moved from the addresses its symbol table uses. */
typedef struct object {
    uintptr_t addr;
    uintptr_t bias;
    bool found;
    char path[4096];
} object;

static int find_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    object *o = arg;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type != PT_LOAD || o->addr < start || o->addr - start >= ph->p_memsz)
            continue;
        const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "/proc/self/exe";
        size_t n = strlen(name);
        if (n >= sizeof o->path)
            return 1; /* found, but no path to read */
        memcpy(o->path, name, n + 1);
        o->bias = info->dlpi_addr;
        o->found = true;
        return 1;
    }
    return 0;
}

typedef struct image {
    const unsigned char *p;
    size_t size;
} image;

/* `n` bytes at `off`, or NULL when they are not all inside the file. */
static const void *image_at(const image *im, uint64_t off, uint64_t n)
{
    if (off > im->size || n > im->size - off)
        return NULL;
    return im->p + off;
}

static const ElfW(Shdr) * section(const image *im, const ElfW(Ehdr) * eh, size_t i)
{
    if (i >= eh->e_shnum || eh->e_shentsize != sizeof(ElfW(Shdr)))
        return NULL;
    return image_at(im, eh->e_shoff + i * sizeof(ElfW(Shdr)), sizeof(ElfW(Shdr)));
}

/* Copy the NUL-terminated string at `off` of the string table `st`. */
static bool copy_string(const image *im, const ElfW(Shdr) * st, uint64_t off, char *buf, size_t len)
{
    const char *s = image_at(im, st->sh_offset, st->sh_size);
    if (!s || off >= st->sh_size)
        return false;
    const char *end = memchr(s + off, 0, st->sh_size - off);
    if (!end || end == s + off)
        return false;
    size_t n = (size_t)(end - (s + off));
    if (n >= len)
        n = len - 1;
    memcpy(buf, s + off, n);
    buf[n] = 0;
    return true;
}

/* Look for the function at `value` in the first section of type `type`. */
static bool search_table(
    const image *im, const ElfW(Ehdr) * eh, uint32_t type, uint64_t value, char *buf, size_t len)
{
    for (size_t i = 0; i < eh->e_shnum; i++) {
        const ElfW(Shdr) *sh = section(im, eh, i);
        if (!sh || sh->sh_type != type)
            continue;
        const ElfW(Shdr) *st = section(im, eh, sh->sh_link);
        const ElfW(Sym) *syms = image_at(im, sh->sh_offset, sh->sh_size);
        if (!st || !syms || st->sh_type != SHT_STRTAB)
            return false;
        size_t n = sh->sh_size / sizeof(ElfW(Sym));
        for (size_t k = 0; k < n; k++) {
            unsigned kind = ELF64_ST_TYPE(syms[k].st_info);
            if ((kind == STT_FUNC || kind == STT_GNU_IFUNC) && syms[k].st_shndx != SHN_UNDEF
                && syms[k].st_value == value && copy_string(im, st, syms[k].st_name, buf, len))
                return true;
        }
        return false;
    }
    return false;
}

static bool search_image(const image *im, uint64_t value, char *buf, size_t len)
{
    const ElfW(Ehdr) *eh = image_at(im, 0, sizeof(ElfW(Ehdr)));
    if (!eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != WK_ELF_CLASS)
        return false;
    return search_table(im, eh, SHT_SYMTAB, value, buf, len)
        || search_table(im, eh, SHT_DYNSYM, value, buf, len);
}

bool wk_symbol_name(const void *addr, char *buf, size_t len)
{
    object o = { .addr = (uintptr_t)addr };
    if (!addr || !buf || len < 2 || !dl_iterate_phdr(find_object, &o) || !o.found)
        return false;
    int fd = open(o.path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size > 0)
        p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return false;
    image im = { p, (size_t)st.st_size };
    bool ok = search_image(&im, (uint64_t)(o.addr - o.bias), buf, len);
    munmap(p, im.size);
    return ok;
}
