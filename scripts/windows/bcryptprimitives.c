/*
 * Stand-in for Windows' bcryptprimitives.dll, for running Rust test binaries
 * under Wine 8.0 (Debian 12), which lacks that DLL. Rust's std (>= 1.78)
 * imports ProcessPrng from it to seed HashMap keys and the like; without it
 * every .exe fails to load (exit status 53, silent under WINEDEBUG=-all).
 *
 * ProcessPrng fills the buffer from RtlGenRandom (advapi32's
 * SystemFunction036), which Wine has. Built by scripts/windows-setup.sh into
 * target/wine-dll/, which scripts/windows-test.sh puts on WINEPATH. Never
 * used on real Windows.
 */
#include <windows.h>

/* RtlGenRandom; declared here to avoid ntsecapi.h's macro dance. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Documented to always return TRUE: callers (Rust's std) do not check it. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst;
    (void)reason;
    (void)reserved;
    return TRUE;
}
